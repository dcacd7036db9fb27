"""`type="finetune"`: full fine-tuning of the classifier on the training machinery.

    config.evals.ft = ml_collections.ConfigDict(dict(
        type="finetune",
        train=common.finetune_config(...),   # the whole training config (configs/common.py)
        test_data=<data config>))            # labelled split scored at every evaluation

The run is `train.loop.train` itself (sharded state, orbax checkpoints with the iterator state,
automatic resume, SIGTERM save, TensorBoard, the progress line) in `<eval workdir>/run`, started
from the pretrained encoder of the context (an orbax run is read directly; a weights file is
imported first) or from scratch when there is none. Its evaluation hook scores `test_data`
every `train.eval_every_steps` steps and after the last one: whole-split metrics
(evaluation.metrics), predictions and, for single-label, the confusion matrix.
"""

from __future__ import annotations

import os
import pathlib

import ml_collections
import numpy as np
from absl import logging

from data_pipelines import pipeline
from spectralgpt_jax.evaluation import metrics as metrics_lib, registry
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.features import eval_data_config
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


@registry.register("finetune")
class FinetuneEvaluator:
  """Fine-tunes `cfg.train` from the context's pretrained weights; scores `cfg.test_data`."""

  def __init__(self, cfg: ml_collections.ConfigDict, ctx: EvalContext):
    registry.require_fields(
        cfg, ctx, "finetune", ("train", "test_data"),
        "`train` is a whole fine-tuning config (configs/common.py:finetune_config), `test_data` "
        "the split to score (configs/evaluation.py:finetune builds both)")
    self.cfg, self.ctx = cfg, ctx
    self.label_type = str(cfg.train.data.label_type)
    self.last: tuple = ()

  def _train_config(self) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict(self.cfg.train.to_dict())
    config.seed = self.ctx.seed
    config.init_from.workdir = pretrained_run(self.ctx)
    if self.ctx.model and self.ctx.model != config.model.name and self.ctx.model.startswith("vit"):
      config.model.name = self.ctx.model
    return config

  def evaluate(self, program, state, step: int) -> dict[str, float]:
    """Whole-split metrics of the classifier at `step`; writes its predictions (the hook)."""
    cfg = eval_data_config(self.cfg.test_data)
    scores, labels, ids = [], [], []
    for batch in pipeline.make_iterator(cfg):
      logits = program.classify(state.params, batch["cube"])
      scores.append(logits)
      labels.append(np.asarray(batch["label"]))
      ids.append(np.asarray(batch["key"]).astype(str))
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    if self.label_type == "multi":
      scores = 1.0 / (1.0 + np.exp(-scores))  # per-class probabilities
    batch_size = int(self.cfg.get("official_batch_size", 0) or cfg.batch_size)
    metrics, confusion = metrics_lib.classification(labels, scores, self.label_type,
                                                    batch_size=batch_size)
    arrays = dict(ids=np.concatenate(ids), labels=labels, scores=scores.astype(np.float32),
                  label_type=self.label_type, official_batch_size=batch_size)
    # The latest evaluation under the names every evaluator uses, each step's beside it.
    for suffix in ("", f"_step{step}"):
      self.ctx.write_npz(f"predictions{suffix}.npz", **arrays)
      if confusion is not None:
        self.ctx.write_bytes(f"confusion{suffix}.png", metrics_lib.confusion_png(confusion))
    self.last = (metrics, {"step": step}, confusion)
    return metrics

  def run(self) -> dict[str, float]:
    config = self._train_config()
    loop.train(config, os.path.join(self.ctx.workdir, "run"), evaluate=self.evaluate)
    if not self.last:
      raise RuntimeError(f"fine-tuning in {self.ctx.workdir} ended without an evaluation")
    metrics, info, confusion = self.last
    self.ctx.write_json("metrics.json", {"metrics": metrics, "info": info,
                                         "confusion_matrix": confusion})
    return metrics
