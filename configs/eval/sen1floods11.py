"""Sen1Floods11 water segmentation (land / water, -1 ignored) with the official SpectralGPT
segmentation head and recipe (SegMunich's: drop path 0.5, AdamW 1e-4, wd 1e-5, 15 warmup epochs
from factor 1e-3 then poly 0.9), or the PANGAEA protocol (`:pangaea`: frozen encoder, UPerNet
512 over blocks 3, 5, 7, 11, wd 0.05, lr x0.1 at 60 % and 90 %).

  python -m spectralgpt_jax evaluate --config configs/eval/sen1floods11.py --workdir runs/eval/s1f11 \
      --config.pretrained=runs/spectralgpt_plus_base_128 --config.root=/data/sen1floods11/hand \
      --config.evals.flood.train.data.split_file=train.txt \
      --config.evals.flood.test_data.split_file=test.txt
  python -m spectralgpt_jax evaluate --config configs/eval/sen1floods11.py:tiny --workdir /tmp/flood

`root` holds the hand-labelled chips in their published layout (S2Hand/*.tif 13-band L1C,
LabelHand/*.tif with -1 / 0 / 1); split files list chip ids. Training: 128 px random crops of
the 512 px chips (16 per chip and epoch), flips, rot90. Scores: whole chips, 128 px tiles at
stride 64 averaged; per-class IoU/F1, mIoU, mean F1, overall accuracy.
Args: `tiny` (seg_vit_tiny on the one shipped chip, trained and scored on it: a smoke test of
the path, not a measurement), `shared=../shared`, `steps=N`, `pangaea`, `frozen`.
"""

from configs import common
from configs import evaluation as E
from configs.eval.dense_common import dense_test_data, tiny_run


def get_config(arg=None):
  a = common.parse_arg(arg, tiny=False, shared="../shared", steps=40, pangaea=False,
                       frozen=False, epochs=100, crops=16, num_chips=252)
  model = "seg_vit_tiny_patch8_32" if a.tiny else "seg_vit_base_patch8_128"
  c = E.eval_config(model)
  c.root = f"{a.shared}/data/sen1floods11_s2_chip" if a.tiny else ""
  recipe = "pangaea" if a.pangaea else "segmunich"
  t = common.dense_config(model=model, recipe=recipe, source="sen1floods11_seg",
                          paths=c.get_ref("root"), num_examples=a.num_chips * a.crops,
                          batch_size=8 if a.tiny else 32, epochs=a.epochs,
                          image_size=64 if a.tiny else 128, freeze_encoder=a.frozen)
  t.model.num_classes = 2
  t.data.crops_per_image = a.crops
  size = 128
  if a.tiny:
    tiny_run(t, a.steps)
    if a.pangaea:
      t.model.feature_layers = (0, 1, 1, 1)
      t.model.head_channels = 32
    size = 64
  c.evals.flood = E.dense(t, dense_test_data(source="sen1floods11_seg", root=c.get_ref("root"),
                                             num_classes=2),
                          tile_size=size, tile_stride=size // 2, tile_batch=16)
  return c
