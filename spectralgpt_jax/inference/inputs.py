"""Input geometry and value checks shared by the Python API and the `embed` CLI.

* `fit_to_size`: resize a cube's last two axes to the model's image size (bicubic by default,
  antialiased, as `data_pipelines.resample.resize_cube`); both entry points call it, so a
  120 px BigEarthNet patch gives the same embedding from Python and from the CLI.
* `check_value_range`: warn when the values contradict the `normalize` setting:
  - normalize=False and the median |x| is above `RAW_DN_MEDIAN` (50): normalized inputs (min-max
    [0, 1], z-scores, [0, 1] after sentinel_clip) and reflectance ([0, ~1.5]) have medians far
    below 50, raw Sentinel-2 digital numbers (reflectance x 10000, typically 100-5000, L2A
    baseline 04.00+ adds 1000) far above it;
  - normalize=True with z-score/sentinel_clip statistics in DN and the median |x| below
    `NORMALIZED_MEDIAN` (1.5): such values are reflectance or already normalized.
  The median (not the max) keeps a few saturated or cloud pixels from deciding.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from data_pipelines import resample

RAW_DN_MEDIAN = 50.0
NORMALIZED_MEDIAN = 1.5
RESAMPLING = resample.METHODS  # nearest, bilinear, bicubic


def fit_to_size(x: np.ndarray, size: int, method: str = "bicubic") -> np.ndarray:
  """[..., H, W] -> float32 [..., size, size]; unchanged (as float32) when already that size."""
  x = np.asarray(x, np.float32)
  if x.ndim < 2:
    raise ValueError(f"expected an image [..., H, W], got shape {x.shape}")
  if x.shape[-2:] == (size, size):
    return x
  if method not in RESAMPLING:
    raise ValueError(f"resampling={method!r}: choose from {RESAMPLING}")
  return resample.resize_cube(x, size, method)


def _summary(x: np.ndarray) -> tuple[float, float]:
  finite = np.abs(x[np.isfinite(x)])
  if finite.size == 0:
    return 0.0, 0.0
  return float(np.median(finite)), float(finite.max())


def check_value_range(x: np.ndarray, *, normalize: bool, units: str,
                      normalization: Mapping[str, Any] | None, stacklevel: int = 3) -> None:
  """Warns (UserWarning, with the median and max |x| found) when `x` [..., C, H, W] looks raw
  while normalize=False, or looks normalized/reflectance while DN statistics will be applied."""
  median, peak = _summary(x)
  if not normalize and median > RAW_DN_MEDIAN:
    warnings.warn(
        f"normalize=False but the input looks like raw digital numbers (median |x| {median:.4g} "
        f"> {RAW_DN_MEDIAN:g}, max {peak:.4g}); the model expects normalized values. Pass "
        "normalize=True (the default) to apply the weights' stored normalization.",
        UserWarning, stacklevel=stacklevel)
    return
  mode = (normalization or {}).get("mode")
  if (normalize and units == "DN" and mode in ("zscore", "sentinel_clip", "sentinel",
                                               "sentinel_normalize")
      and peak > 0 and median < NORMALIZED_MEDIAN):
    warnings.warn(
        f"normalize=True with units='DN' but the input looks like reflectance or already "
        f"normalized values (median |x| {median:.4g} < {NORMALIZED_MEDIAN:g}, max {peak:.4g}). "
        "Pass units='reflectance' for reflectance, or normalize=False for normalized input.",
        UserWarning, stacklevel=stacklevel)
