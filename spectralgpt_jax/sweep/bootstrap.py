"""Percentile bootstrap confidence intervals over test examples (seeded, reproducible).

  est, lo, hi = bootstrap_ci(stat, labels, scores, n_resamples=1000, seed=0, level=0.95)

Every array is resampled along axis 0 with the same indices (examples drawn with replacement,
N of N), `stat(*resampled)` is evaluated on each resample, and the interval is the
((1 - level) / 2, (1 + level) / 2) percentiles of the finite values (numpy's linear
interpolation). It says how much the number could move with another draw of test examples
of the same size; it says nothing about seeds, splits or the train set.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

N_RESAMPLES = 1000
LEVEL = 0.95


def resample_indices(n: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
  """[n_resamples, n] int64 indices, drawn with replacement by numpy's default generator."""
  if n < 1:
    raise ValueError("bootstrap needs at least one example")
  return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def bootstrap_ci(stat: Callable[..., Any], *arrays: np.ndarray,
                 n_resamples: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL,
                 ) -> tuple[Any, Any, Any]:
  """(stat on all examples, lower, upper) of the percentile bootstrap; arrays [N, ...].

  `stat` returns a float, or a vector of M statistics (then each of the three is [M], every
  statistic scored on the same resamples and its interval taken from its own finite values).
  """
  arrays = tuple(np.asarray(a) for a in arrays)
  n = len(arrays[0])
  if any(len(a) != n for a in arrays):
    raise ValueError(f"arrays differ in length: {[len(a) for a in arrays]}")
  if n < 1:
    raise ValueError("bootstrap needs at least one example")
  if not 0 < level < 1:
    raise ValueError(f"level must be in (0, 1), got {level}")
  estimate = np.asarray(stat(*arrays), np.float64)
  values = np.array([stat(*(a[idx] for a in arrays))
                     for idx in resample_indices(n, n_resamples, seed)], np.float64)
  values = values.reshape(n_resamples, -1)
  bounds = np.full((2, values.shape[1]), np.nan)
  for j in range(values.shape[1]):
    finite = values[:, j][np.isfinite(values[:, j])]
    if finite.size:
      bounds[:, j] = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
  if estimate.ndim == 0:
    return float(estimate), float(bounds[0, 0]), float(bounds[1, 0])
  return estimate, bounds[0], bounds[1]
