"""Tiny real-data sweep for the CPU (`make demo-eval`): the demo checkpoint against a randomly
initialised encoder, linear probe, k-NN and a short fine-tune, on two small real tasks. 4
points, a few minutes.

  python -m spectralgpt_jax sweep --config configs/eval/tiny_sweep.py --workdir runs/demo/eval

Tasks: the 16 128-px tiles of the Sen1Floods11 chip (single-label: water covers more than 25%
of the tile's labelled pixels; 12 train / 4 test tiles, configs/eval/splits/) and the six
BigEarthNet-S2 example patches from `make demo`'s shards (BigEarthNet-19 multi-label; 4 train /
2 test patches). Inputs are min-max normalised at 64 px, as the demo model was pretrained.
The fine-tune (`ben_ft`) trains vit_tiny for 20 steps with the official recipe's loss and
optimizer from the point's encoder (or from scratch) on the 4 BigEarthNet training patches.
Points: pretrained in {runs/demo/run, ""} x seed in {0, 1} (the seed changes the random
encoder and the fine-tune; ridge and k-NN are deterministic). With 4 and 2 test examples the numbers are a
smoke test of the whole path, not a measurement.
Args (after ':'): `shared=../shared` (the shared data folder), `demo=runs/demo` (holds run/
and shards/), `size=64` (input pixels).
"""

import os

from configs import common
from configs import evaluation as E
from configs.sweeps import product, sweep

SPLITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits")


def _args(arg):
  return common.parse_arg(arg, shared="../shared", demo="runs/demo", size=64)


def get_config(arg=None):
  a = _args(arg)
  c = E.eval_config("mae_vit_tiny_patch8_32", pretrained=f"{a.demo}/run")

  def flood(split):
    return E.eval_data(label_type="single", num_classes=2, image_size=a.size, batch_size=8,
                       source="sen1floods11_tiles", normalization="minmax",
                       paths=f"{a.shared}/data/sen1floods11_s2_chip",
                       sen1floods11_tiles={"water_share_thresholds": (0.25,)},
                       split_file=f"{SPLITS}/sen1floods11_chip_{split}.txt")

  def ben(split):
    return E.eval_data(label_type="multi", num_classes=19, image_size=a.size, batch_size=8,
                       normalization="minmax", paths=f"{a.demo}/shards",
                       split_file=f"{SPLITS}/bigearthnet_example_{split}.txt")

  l2 = (1e-4, 1e-2, 1.0, 100.0)
  E.add_protocols(c, "flood", "both", flood("train"), flood("test"),
                  linear={"l2_strengths": l2}, knn={"k": 5, "temperature": 0.07})
  E.add_protocols(c, "ben", "both", ben("train"), ben("test"),
                  linear={"l2_strengths": l2}, knn={"k": 3, "temperature": 0.07})
  ft = common.finetune_config(model="vit_tiny_patch8_32", num_classes=19, label_type="multi",
                              image_size=a.size, batch_size=8, blr=0.05, epochs=20,
                              warmup_epochs=2, num_examples=8)
  ft.data.normalization, ft.data.paths = "minmax", f"{a.demo}/shards"
  ft.data.split_file = f"{SPLITS}/bigearthnet_example_train.txt"
  ft.data.shuffle_window, ft.data.cycle_length = 4, 2
  ft.checkpoint.every_steps, ft.log.every_steps = 20, 10
  c.evals.ben_ft = E.finetune(ft, ben("test"))
  return c


def get_sweep(arg=None):
  a = _args(arg)
  return product(sweep("pretrained", [f"{a.demo}/run", ""]), sweep("seed", [0, 1]))
