"""OSCD change detection (spec sections 3-5): Siamese SpectralGPT encoder, feature difference,
the official pyramid + UPerNet-like head, class-weighted NLL from the training change fraction,
AdamW 1e-4 / wd 1e-5, ExponentialLR 0.95 per epoch, batch 32, 300 epochs, drop path 0.5.

  python -m spectralgpt_jax evaluate --config configs/eval/oscd.py --workdir runs/eval/oscd \
      --config.pretrained=runs/spectralgpt_plus_base_128 --config.root=/data/OSCD
  python -m spectralgpt_jax evaluate --config configs/eval/oscd.py:tiny --workdir /tmp/oscd
  python -m spectralgpt_jax sweep --config configs/eval/oscd.py:tiny --workdir runs/oscd_sweep

`root` is the dataset in its published layout (the Images and Train Labels folders; the full
dataset's train.txt / test.txt choose the cities). Training crops: 128 px, `crops` per city and
epoch, flips and rot90, whole-image min-max ("image" scope; the official per-patch min-max
without eps is `--config.evals.oscd.train.data.minmax_scope=patch` with `minmax_eps=0`, and the
same on test_data). Scores: whole test images with 128 px tiles at stride 64 averaged, and the
official protocol (128 px tiles at stride 63, last partial batch of 32 dropped) as
`official_oscd_*`.
Args: `tiny` (trains cd_vit_tiny_patch8_32 from scratch or from `pretrained` on the shipped
aguasclaras, bercy, bordeaux, paris and scores rennes, hongkong: a few minutes on 2 CPU cores),
`shared=../shared`, `steps=N` (tiny: training steps), `frozen` (decoder only),
`pretrained=RUN` (e.g. runs/demo/run for the tiny model; also --config.pretrained).
Sweep (`get_sweep`): {frozen, fine-tune} x learning rates.
"""

from configs import common
from configs import evaluation as E
from configs.eval.dense_common import dense_test_data, tiny_run
from configs.sweeps import product, sweep

TRAIN_CITIES = "aguasclaras,bercy,bordeaux,paris"
TEST_CITIES = "rennes,hongkong"


def _args(arg):
  return common.parse_arg(arg, tiny=False, shared="../shared", steps=150, frozen=False,
                          crops=32, pretrained="")


def _test_data(root, cities: str, split: str):
  return dense_test_data(source="oscd", root=root, num_classes=2,
                         oscd={"cities": cities, "dataset_split": split})


def get_config(arg=None):
  a = _args(arg)
  c = E.eval_config("cd_vit_tiny_patch8_32" if a.tiny else "cd_vit_base_patch8_128",
                    pretrained=a.pretrained)
  c.root = f"{a.shared}/data/oscd_s2_subset" if a.tiny else ""
  if a.tiny:
    t = common.dense_config(model="cd_vit_tiny_patch8_32", recipe="oscd", source="oscd",
                            paths=c.get_ref("root"), num_examples=4 * 8, batch_size=8,
                            epochs=1, image_size=64, freeze_encoder=a.frozen)
    tiny_run(t, a.steps)
    t.data.oscd.cities = TRAIN_CITIES
    t.data.crops_per_image = 8
    test = _test_data(c.get_ref("root"), TEST_CITIES, "")
    c.evals.oscd = E.dense(t, test, official_oscd=True, tile_size=64, tile_stride=64,
                           tile_batch=16)
    return c
  t = common.dense_config(model="cd_vit_base_patch8_128", recipe="oscd", source="oscd",
                          paths=c.get_ref("root"), num_examples=14 * a.crops, batch_size=32,
                          epochs=300, image_size=128, freeze_encoder=a.frozen)
  t.data.oscd.dataset_split = "train"
  t.data.crops_per_image = a.crops
  t.checkpoint.every_steps = 1000
  c.evals.oscd = E.dense(t, _test_data(c.get_ref("root"), "", "test"), official_oscd=True,
                         tile_size=128, tile_stride=64)
  return c


def get_sweep(arg=None):
  """{frozen encoder, fine-tune} x learning rates."""
  a = _args(arg)
  lrs = [3e-3, 1e-3] if a.tiny else [1e-4, 3e-4, 1e-3]
  return product(sweep("evals.oscd.train.model.freeze_encoder", [True, False]),
                 sweep("evals.oscd.train.optim.lr", lrs))
