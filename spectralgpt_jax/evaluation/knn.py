"""`type="knn"`: cosine k-NN on frozen features with temperature-weighted votes (DINO).

Each test example takes its k most cosine-similar train examples; neighbour j votes with
weight exp(sim_j / T) for its label (one-hot or multi-hot). Scores = votes / sum of weights:
class probabilities (single-label, prediction = argmax) or per-class weighted label
frequencies in [0, 1] (multi-label; F1 thresholds them at 0.5).

Fields (config.evals.<name>, besides base.py's): k (default 20), temperature (0.07),
chunk (test rows per similarity block, 1024). Metrics: the full test metrics (metrics.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spectralgpt_jax.evaluation.base import FeatureEvaluator
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.registry import register


def l2_normalize(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float32)
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, *, k: int,
               temperature: float, chunk: int = 1024) -> np.ndarray:
  """[M, K] vote scores of test_x [M, F] from train_x [N, F] with targets train_y [N, K]."""
  a, q = l2_normalize(train_x), l2_normalize(test_x)
  train_y = np.asarray(train_y, np.float64)
  k = min(int(k), a.shape[0])
  out = []
  for i in range(0, q.shape[0], chunk):
    sim = q[i:i + chunk] @ a.T                                      # [m, N]
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]               # top k, unordered
    top = np.take_along_axis(sim, idx, axis=1).astype(np.float64)
    w = np.exp((top - top.max(axis=1, keepdims=True)) / temperature)  # stable; ratios same
    votes = np.einsum("mk,mkc->mc", w, train_y[idx])
    out.append(votes / w.sum(axis=1, keepdims=True))
  return np.concatenate(out)


@register("knn")
class KnnEvaluator(FeatureEvaluator):
  """Cosine k-NN on cached frozen-encoder features (see module docstring)."""

  def __init__(self, *, ctx: EvalContext, k: int = 20, temperature: float = 0.07,
               chunk: int = 1024, **data_fields: Any):
    super().__init__(ctx=ctx, **data_fields)
    self.k, self.temperature, self.chunk = int(k), float(temperature), int(chunk)

  def run(self) -> dict[str, float]:
    train, test = self.features("train"), self.features("test")
    k_cls = self.num_classes(train, test)
    k, t = self.k, self.temperature
    scores = knn_scores(train.features, self.targets(train, k_cls), test.features, k=k,
                        temperature=t, chunk=self.chunk)
    metrics, cm = self.score(test, scores)
    info = {"k": k, "temperature": t, "num_classes": k_cls, "num_train": len(train.ids),
            "feature_dim": train.features.shape[1], "layers": self.layers,
            "pooling": self.pooling, "compute_dtype": self.compute_dtype,
            "extracted": self.cache.extracted}
    return self.finish(test, scores, dict(metrics), info, cm)
