"""`type="finetune"`: full fine-tuning of the classifier on the training machinery.

    config.evals.ft = ml_collections.ConfigDict(dict(
        type="finetune",
        train=common.finetune_config(...),   # the whole training config (configs/common.py)
        test_data=<data config>,             # labelled split scored at every evaluation
        official_batch_size=0))              # 0 = test_data.batch_size

Training as trained.py describes. The evaluation hook scores `test_data` every
`train.eval_every_steps` steps and after the last one: whole-split metrics (evaluation.metrics)
of the float32 scores that `predictions.npz` holds (logits, or sigmoid probabilities for
multi-label), and for single-label the confusion matrix. Rows are sorted by example id (as the
frozen-feature evaluators'), so the order-dependent `official_batch_micro_map` does not depend
on the number of processes. Several processes: each reads its share of the split and the
classifier, a collective call, runs on the batches of all processes
(multihost.global_batches); every process gets every score.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from data_pipelines import pipeline
from spectralgpt_jax.evaluation import metrics as metrics_lib, multihost, registry
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.features import FeatureSet, canonical_order, eval_data_config
from spectralgpt_jax.evaluation.trained import TrainedEvaluator


@registry.register("finetune")
class FinetuneEvaluator(TrainedEvaluator):
  """Fine-tunes `train` from the context's pretrained weights; scores `test_data`."""

  MODEL_PREFIXES = ("vit",)

  def __init__(self, *, ctx: EvalContext, train: ml_collections.ConfigDict,
               test_data: ml_collections.ConfigDict, official_batch_size: int = 0):
    super().__init__(ctx=ctx, train=train, test_data=test_data)
    self.label_type = str(train.data.label_type)
    self.official_batch_size = int(official_batch_size) or int(test_data.batch_size)

  def evaluate(self, program, state, step: int) -> dict[str, float]:
    """Whole-split metrics of the classifier at `step`; writes its predictions (the hook)."""
    cfg = eval_data_config(self.test_data)
    logits, labels, ids = [], [], []
    for batch in multihost.global_batches(iter(pipeline.make_iterator(cfg)),
                                          f"config.evals.{self.ctx.name}.test_data"):
      logits.append(program.predict_host(state.params, batch["cube"]))
      labels.append(np.asarray(batch["label"]))
      ids.append(np.asarray(batch["key"]).astype(str))
    rows = canonical_order(FeatureSet(np.concatenate(logits).astype(np.float64),
                                      np.concatenate(labels), np.concatenate(ids)))
    scores = rows.features
    if self.label_type == "multi":
      scores = 1.0 / (1.0 + np.exp(-scores))  # per-class probabilities
    scores = metrics_lib.saved_scores(scores)   # scored as saved
    metrics, confusion = metrics_lib.classification(rows.labels, scores, self.label_type,
                                                    batch_size=self.official_batch_size)
    arrays = dict(ids=rows.ids, labels=rows.labels, scores=scores,
                  label_type=self.label_type, official_batch_size=self.official_batch_size)
    # The latest evaluation under the names every evaluator uses, each step's beside it.
    for suffix in ("", f"_step{step}"):
      self.ctx.write_npz(f"predictions{suffix}.npz", **arrays)
      if confusion is not None:
        self.ctx.write_bytes(f"confusion{suffix}.png", metrics_lib.confusion_png(confusion))
    self.last = {"metrics": metrics, "info": {"step": step}, "confusion_matrix": confusion}
    return metrics
