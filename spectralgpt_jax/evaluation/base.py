"""`FeatureEvaluator`: the shared part of evaluators on frozen-encoder features (linear, knn).

Fields of config.evals.<name> read here (constructor keywords; subclasses add their own):
  train_data, test_data, val_data (optional): `default_data_config()` blocks with
    label_type ("single" | "multi") and num_classes (K; for single-label 0 = infer from labels);
  layers: encoder blocks to read (None = the model's feature output; see features.py);
  pooling: "mean" | "skip_first";
  compute_dtype: "float32" (default) | "bfloat16": matmul precision of the frozen encoder
    (features.py; docs/evaluation.md has what bfloat16 costs);
  official_batch_size: batch size of `official_batch_micro_map` (0 = test_data.batch_size);
  bands, spectral_mode: the band subset of the input and how it reaches the encoder
    (band_input.py; default "" and "s2": the 12 SpectralGPT bands as they are).
Outputs in ctx.workdir: metrics.json, predictions.npz (ids, labels, scores, label_type, ...),
confusion.png (single-label). The scores are scored as predictions.npz holds them (float32,
metrics.saved_scores).
"""

from __future__ import annotations

from typing import Any, Sequence

import ml_collections
import numpy as np

from data_pipelines import datasets
from spectralgpt_jax.evaluation import band_input
from spectralgpt_jax.evaluation import metrics as metrics_lib
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.features import FeatureCache, FeatureSet
from spectralgpt_jax.inference.model import COMPUTE_DTYPES


class FeatureEvaluator:
  """Loads cached features of train/val/test; subclasses implement `run()`."""

  def __init__(self, *, ctx: EvalContext, train_data: ml_collections.ConfigDict,
               test_data: ml_collections.ConfigDict,
               val_data: ml_collections.ConfigDict | None = None,
               layers: Sequence[int] | None = None, pooling: str = "mean",
               compute_dtype: str = "float32", official_batch_size: int = 0,
               bands: str = "", spectral_mode: str = "s2"):
    self.ctx, self.cache = ctx, FeatureCache(ctx)
    try:
      self.band_input = band_input.parse(bands, spectral_mode)
    except ValueError as e:
      raise ValueError(f"config.evals.{ctx.name}: {e}") from None
    self.data = {"train": train_data, "test": test_data, "val": val_data}
    self.label_type = str(test_data.label_type)
    if str(train_data.label_type) != self.label_type:
      raise ValueError(f"config.evals.{ctx.name}: train_data.label_type "
                       f"{train_data.label_type!r} != test_data.label_type {self.label_type!r}")
    self.layers = None if layers is None else tuple(int(i) for i in layers)
    self.pooling = str(pooling)
    self.compute_dtype = str(compute_dtype)
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f"config.evals.{ctx.name}.compute_dtype must be one of "
                       f"{COMPUTE_DTYPES}, got {self.compute_dtype!r}")
    self.official_batch_size = int(official_batch_size) or int(test_data.batch_size)

  def features(self, split: str) -> FeatureSet | None:
    """FeatureSet of `<split>_data` ("train", "val", "test"); None if that split is not set."""
    data = self.data[split]
    if data is None or (split == "val" and not data.get("paths")
                        and datasets.get(data.source).kind == "shards"):
      return None
    return self.cache.get(data, layers=self.layers, pooling=self.pooling,
                          compute_dtype=self.compute_dtype, band_input=self.band_input)

  def num_classes(self, *sets: FeatureSet) -> int:
    k = int(self.data["test"].get("num_classes", 0) or 0)
    if self.label_type == "multi":
      return sets[0].labels.shape[1]
    return k or int(max(int(s.labels.max()) for s in sets)) + 1

  def targets(self, fs: FeatureSet, k: int) -> np.ndarray:
    """[N, K] float64 one-hot (single) or multi-hot targets."""
    if self.label_type == "multi":
      return np.asarray(fs.labels, np.float64)
    return np.eye(k)[np.asarray(fs.labels, np.int64)]

  def score(self, fs: FeatureSet, scores: np.ndarray) -> tuple[dict[str, float], Any]:
    """(metrics, confusion matrix or None) of `scores` [N, K] on `fs`, scored as saved
    (float32)."""
    return metrics_lib.classification(fs.labels, metrics_lib.saved_scores(scores),
                                      self.label_type, batch_size=self.official_batch_size)

  def finish(self, test: FeatureSet, scores: np.ndarray, metrics: dict[str, float],
             info: dict[str, Any], cm: np.ndarray | None = None) -> dict[str, float]:
    """Writes metrics.json, predictions.npz (and confusion.png); returns `metrics`."""
    self.ctx.write_npz("predictions.npz", ids=test.ids, labels=test.labels,
                       scores=metrics_lib.saved_scores(scores), label_type=self.label_type,
                       official_batch_size=self.official_batch_size)
    info = {**info, "bands": list(self.band_input.names),
            "spectral_mode": self.band_input.mode}
    if cm is not None:
      self.ctx.write_bytes("confusion.png", metrics_lib.confusion_png(cm))
    self.ctx.write_json("metrics.json", {"metrics": metrics, "info": info,
                                         "confusion_matrix": cm})
    return metrics
