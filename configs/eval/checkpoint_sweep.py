"""Pretraining checkpoints x protocols: how the frozen features improve over pretraining.

  python -m spectralgpt_jax sweep --config configs/eval/checkpoint_sweep.py:run=runs/demo/run,steps=100+200+300 \
      --workdir runs/demo/ckpt_sweep

Each point evaluates one checkpoint (`<run>/checkpoints/<step>`, read by inference.load) with
every protocol (`protocol=both|linear|knn`: evals of the point, which share one feature
extraction per checkpoint through the cache) on the Sen1Floods11 tiles (default) or EuroSAT
(`task=eurosat`, then set --config.data_root / train_split / test_split as in
eurosat_linear.py). Points x seeds: `seeds=0+1`. The sweep writes metric_vs_step.png (one panel
per protocol metric). Args (after ':'): run, steps and seeds ('+'-separated), protocol,
task=flood|eurosat, shared=../shared, model, size.
"""

import os

from configs import common
from configs import evaluation as E
from configs.sweeps import product, sweep

SPLITS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits")


def _args(arg):
  return common.parse_arg(arg, run="runs/demo/run", steps="100+200+300",
                          seeds="0", protocol="both", task="flood", shared="../shared",
                          model="mae_vit_tiny_patch8_32", size=64)


def get_config(arg=None):
  a = _args(arg)
  c = E.eval_config(a.model, pretrained=a.run)
  c.data_root, c.train_split, c.test_split = "", "", ""
  if a.task == "flood":
    def data(split):
      return E.eval_data(label_type="single", num_classes=2, image_size=a.size, batch_size=8,
                         source="sen1floods11_tiles", normalization="minmax",
                         paths=f"{a.shared}/data/sen1floods11_s2_chip",
                         split_file=f"{SPLITS}/sen1floods11_chip_{split}.txt")
    train, test = data("train"), data("test")
  elif a.task == "eurosat":
    def data(split):
      d = E.eval_data(label_type="single", num_classes=10, image_size=a.size,
                      normalization="zscore", stats="eurosat_official")
      d.paths, d.split_file = c.get_ref("data_root"), c.get_ref(split)
      return d
    train, test = data("train_split"), data("test_split")
  else:
    raise ValueError(f"task {a.task!r} not in ('flood', 'eurosat')")
  E.add_protocols(c, a.task, a.protocol, train, test)
  return c


def get_sweep(arg=None):
  a = _args(arg)
  steps = [int(s) for s in a.steps.split("+") if s]
  seeds = [int(s) for s in a.seeds.split("+") if s]
  return product(sweep("pretrained", [f"{a.run}/checkpoints/{s}" for s in steps]),
                 sweep("seed", seeds))
