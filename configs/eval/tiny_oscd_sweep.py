"""The change-detection part of `make demo-eval`: OSCD with the tiny change-detection model
(configs/eval/oscd.py:tiny) fine-tuned `steps` steps on the 4 shipped training cities from the
demo encoder or from a random initialisation (the reference row), scored on rennes and
hongkong (never seen by the demo's pretraining). 2 points, a few minutes on 2 CPU cores.

  python -m spectralgpt_jax sweep --config configs/eval/tiny_oscd_sweep.py --workdir runs/demo/eval_oscd

results.md has the F1 and IoU of the change class, one seed each and no interval: the two
test cities are two examples, too few for a bootstrap, so the numbers are a smoke test of the
path, not a measurement.
Args (after ':'): `shared=../shared`, `demo=runs/demo`, `steps=100`.
"""

from configs import common
from configs.eval import oscd
from configs.sweeps import product, sweep


def _args(arg):
  return common.parse_arg(arg, shared="../shared", demo="runs/demo", steps=100)


def get_config(arg=None):
  a = _args(arg)
  return oscd.get_config(f"tiny,shared={a.shared},steps={a.steps},pretrained={a.demo}/run")


def get_sweep(arg=None):
  a = _args(arg)
  return product(sweep("pretrained", [f"{a.demo}/run", ""]), sweep("seed", [0]))
