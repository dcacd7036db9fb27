"""`TrainedEvaluator`: the shared skeleton of the evaluators that train on the training
machinery, then score (finetune.py: classifiers; dense_eval.py: segmentation and change
detection).

Fields of config.evals.<name> (constructor keywords; subclasses add their own):
  train: a whole training config (configs/common.py: finetune_config, dense_config) whose
    `data` is the training split;
  test_data: the split scored by the evaluation hook.
The run is `train.loop.train` itself (sharded state, orbax checkpoints with the iterator state,
automatic resume, SIGTERM save, TensorBoard, the progress line) in `<eval workdir>/run`,
started from the context's pretrained encoder (`pretrained_run`) or from scratch when there is
none; the loop calls `evaluate(program, state, step)` every `train.eval_every_steps` steps and
after the last one. The last evaluation's report is written to `<eval workdir>/metrics.json`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import ml_collections
from absl import logging

from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.train import loop


def pretrained_run(ctx: EvalContext) -> str:
  """An orbax run directory holding the pretrained weights ("" for none): the context's own
  when it is one, else the weights file imported once into `<workdir>/pretrained`."""
  if not ctx.pretrained:
    return ""
  path = pathlib.Path(ctx.pretrained).expanduser()
  if path.is_dir():
    return str(path)
  from spectralgpt_jax.export import from_torch  # pylint: disable=g-import-not-at-top
  out = pathlib.Path(ctx.workdir) / "pretrained"
  if not (out / "checkpoints").is_dir():
    logging.info("importing %s into %s for fine-tuning", path, out)
    from_torch.import_file(path, out)
  return str(out)


class TrainedEvaluator:
  """Trains `train` from the context's pretrained weights; `evaluate` (the loop's hook, by
  subclasses) scores `test_data` and keeps its report in `self.last`."""

  # ctx.model replaces config.model.name when it starts with one of these (a variant of the
  # trained kind; an MAE variant name only names the pretrained encoder).
  MODEL_PREFIXES: tuple[str, ...] = ()

  def __init__(self, *, ctx: EvalContext, train: ml_collections.ConfigDict,
               test_data: ml_collections.ConfigDict):
    self.ctx, self.train, self.test_data = ctx, train, test_data
    self.last: dict[str, Any] = {}  # {"metrics", "info", ...} of the last evaluation

  def train_config(self) -> ml_collections.ConfigDict:
    """A copy of `train` with the context's seed, pretrained run and model variant."""
    config = ml_collections.ConfigDict(self.train.to_dict())
    config.seed = self.ctx.seed
    config.init_from.workdir = pretrained_run(self.ctx)
    if self.ctx.model and self.ctx.model.startswith(self.MODEL_PREFIXES):
      config.model.name = self.ctx.model
    return config

  def evaluate(self, program, state, step: int) -> dict[str, float]:
    """Metrics of `state` at `step` (the loop's evaluation hook); sets `self.last`."""
    raise NotImplementedError

  def report(self, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """metrics.json's content after training (default: the last evaluation's report)."""
    del config
    return self.last

  def run(self) -> dict[str, float]:
    config = self.train_config()
    loop.train(config, os.path.join(self.ctx.workdir, "run"), evaluate=self.evaluate)
    if not self.last:
      raise RuntimeError(f"training in {self.ctx.workdir} ended without an evaluation")
    self.ctx.write_json("metrics.json", self.report(config))
    return self.last["metrics"]
