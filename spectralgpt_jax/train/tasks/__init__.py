"""Training objectives by model kind: the one table train/program.py reads (kind -> task).

A new objective is a module beside these (a `base.Task` subclass) and one entry here.
"""

from __future__ import annotations

from spectralgpt_jax.train.tasks import base, classify, dense, mae

TASKS: dict[str, base.Task] = {
    "mae": mae.MaeTask(),               # pretraining: masked reconstruction
    "vit": classify.ClassifyTask(),     # fine-tuning a classifier
    "seg": dense.DenseTask(),           # segmentation
    "change": dense.DenseTask(),        # change detection (two dates)
}


def task_for(kind: str) -> base.Task:
  """The task training models of `kind` (ModelSpec.kind); ValueError naming the known kinds."""
  if kind not in TASKS:
    raise ValueError(f"no training task for model kind {kind!r}; known kinds: {sorted(TASKS)} "
                     "(table spectralgpt_jax/train/tasks/__init__.py:TASKS)")
  return TASKS[kind]
