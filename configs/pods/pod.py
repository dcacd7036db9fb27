"""Shared by the pod presets: an official stage-2 pretraining config on a named compile target.

A preset fixes what the memory plan (`python -m spectralgpt_jax compile --plan`) chose for the
official global batches (4096; 2048 for smaller runs) on its target: mesh shape, remat policy,
gradient-accumulation steps. The global batch and the learning rate stay the recipe's
(lr = blr x batch / 256), so a preset changes how a step runs, never what it computes.
"""

from __future__ import annotations

from configs import common

MODELS = {"base": "spectralgpt_plus_base_128", "large": "spectralgpt_large",
          "huge": "spectralgpt_huge"}


def pod_config(model: str, arg: str | None, *, mesh: dict[str, int],
               plans: dict[int, tuple[str, int]]):
  """`plans`: global batch -> (remat, accum_steps) measured for the target; arg `batch=2048`."""
  import importlib  # pylint: disable=g-import-not-at-top
  a = common.parse_arg(arg, batch=4096)
  if a.batch not in plans:
    raise ValueError(f"no plan for global batch {a.batch}; planned: {sorted(plans)} (run "
                     "`python -m spectralgpt_jax compile --plan` for another)")
  module = importlib.import_module(f"configs.pretrain.{MODELS[model]}")
  c = module.get_config("stage=2" if model != "base" else None)
  c.batch_size = a.batch
  for axis, size in mesh.items():
    c.mesh[axis] = size
  c.model.remat, c.optim.accum_steps = plans[a.batch]
  return c
