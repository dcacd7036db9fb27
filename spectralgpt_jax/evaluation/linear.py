"""`type="linear"`: linear classifier on frozen features, over a sweep of L2 strengths.

Closed-form ridge regression on one-hot (single-label) or multi-hot (multi-label) targets,
features standardised with train statistics, bias unpenalised:
  W(l) = argmin (1/N) |Xs W + b - Y|^2 + l |W|^2.
Why ridge and not L-BFGS logistic regression: one eigendecomposition (of the F x F feature
Gram matrix, or the N x N kernel matrix when N < F) gives the exact solution for every
strength, so the sweep costs one factorisation and no optimiser settings (iterations,
tolerance, init) can change a result; it is deterministic in float64 on any host. Its
scores are not calibrated probabilities (threshold-0.5 F1 reads them as such; argmax and
mAP only use their order). Prediction: argmax (single), scores as they are (multi).

Fields (config.evals.<name>, besides base.py's): l2_strengths (tuple of floats, default
DEFAULT_STRENGTHS), select_metric ("" = accuracy / macro_map). The strength is chosen on
val_data when given, else on test_data (reported: `selected_on_val` 0.0, an optimistic
number). Every strength is scored on the float32 scores that predictions.npz would hold.
Metrics: `l2=<s>/<select_metric>` (test) and `l2=<s>/val_<select_metric>` per strength; the
full test metrics (metrics.py) at the chosen strength, `best_l2`, `selected_on_val`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from spectralgpt_jax.evaluation import metrics as metrics_lib
from spectralgpt_jax.evaluation.base import FeatureEvaluator
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.registry import register

DEFAULT_STRENGTHS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def standardize_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  mu, sd = x.mean(axis=0), x.std(axis=0)
  return mu, np.where(sd > 1e-12, sd, 1.0)


def ridge_path(x: np.ndarray, y: np.ndarray, strengths: Sequence[float]
               ) -> list[tuple[np.ndarray, np.ndarray]]:
  """[(W [F, K], b [K])] of ridge on standardised-inside features x [N, F], targets y [N, K].

  W is for the raw features (standardisation folded in): scores = x @ W + b.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  n = x.shape[0]
  mu, sd = standardize_stats(x)
  xs = (x - mu) / sd
  ym = y.mean(axis=0)
  yc = y - ym
  out = []
  if n >= x.shape[1]:  # primal: (Xs^T Xs + N l I) W = Xs^T Y
    e, v = np.linalg.eigh(xs.T @ xs)
    proj = v.T @ (xs.T @ yc)
    ws = [v @ (proj / (np.maximum(e, 0) + n * l)[:, None]) for l in strengths]
  else:                # dual: W = Xs^T (Xs Xs^T + N l I)^-1 Y
    e, v = np.linalg.eigh(xs @ xs.T)
    proj = v.T @ yc
    ws = [xs.T @ (v @ (proj / (np.maximum(e, 0) + n * l)[:, None])) for l in strengths]
  for w in ws:
    w_raw = w / sd[:, None]
    out.append((w_raw, ym - mu @ w_raw))
  return out


@register("linear")
class LinearEvaluator(FeatureEvaluator):
  """Ridge linear probe on cached frozen-encoder features (see module docstring)."""

  def __init__(self, *, ctx: EvalContext, l2_strengths: Sequence[float] = DEFAULT_STRENGTHS,
               select_metric: str = "", **data_fields: Any):
    super().__init__(ctx=ctx, **data_fields)
    self.strengths = tuple(float(s) for s in l2_strengths)
    self.select = str(select_metric) or metrics_lib.main_metric(self.label_type)

  def run(self) -> dict[str, float]:
    train, test, val = self.features("train"), self.features("test"), self.features("val")
    k = self.num_classes(*(s for s in (train, test, val) if s is not None))
    strengths, select = self.strengths, self.select
    path = ridge_path(train.features, self.targets(train, k), strengths)
    metrics: dict[str, float] = {}
    choose, scored = [], []
    for l, (w, b) in zip(strengths, path):
      scores = test.features @ w + b
      m_test, cm = self.score(test, scores)
      scored.append((scores, m_test, cm))
      metrics[f"l2={l:g}/{select}"] = m_test[select]
      if val is not None:
        m_val, _ = self.score(val, val.features @ w + b)
        metrics[f"l2={l:g}/val_{select}"] = m_val[select]
        choose.append(m_val[select])
      else:
        choose.append(m_test[select])
    best = int(np.nanargmax(np.asarray(choose, np.float64)))
    scores, full, cm = scored[best]   # the chosen strength's test scores, scored once
    metrics.update(full)
    metrics.update({"best_l2": strengths[best], "selected_on_val": float(val is not None)})
    info = {"select_metric": select, "strengths": strengths, "num_classes": k,
            "num_train": len(train.ids), "num_val": 0 if val is None else len(val.ids),
            "feature_dim": train.features.shape[1], "layers": self.layers,
            "pooling": self.pooling, "compute_dtype": self.compute_dtype,
            "extracted": self.cache.extracted,
            "classifier": "closed-form ridge on one-/multi-hot targets"}
    return self.finish(test, scores, metrics, info, cm)
