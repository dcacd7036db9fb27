"""Normalization of raw Sentinel-2 cubes with the statistics stored beside the weights."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

_MODE_ALIASES = {"minmax_per_image": "minmax", "sentinel_normalize": "sentinel_clip",
                 "sentinel": "sentinel_clip"}
UNITS = ("DN", "reflectance")
DN_PER_REFLECTANCE = 10000.0


def _stats(norm: Mapping[str, Any], bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray, str]:
  """(mean, std) in `bands` order, and their units, from a normalization record."""
  from data_pipelines import schema, stats  # pylint: disable=g-import-not-at-top
  if "mean" in norm and "std" in norm:
    src = norm.get("bands") or list(bands)
    idx = schema.band_indices(src, bands)
    return (np.asarray(norm["mean"], np.float32)[idx], np.asarray(norm["std"], np.float32)[idx],
            norm.get("units", "DN"))
  name = norm.get("stats") or norm.get("name")
  if name in stats.REGISTRY:
    s = stats.get_stats(name)
    mean, std = s.for_bands(bands)
    return mean, std, s.units
  raise ValueError(f"normalization {dict(norm)} needs per-band mean and std, and neither these "
                   "nor a known statistics name are stored")


def normalize_cube(cube: np.ndarray, bands: Sequence[str], norm: Mapping[str, Any] | None, *,
              units: str = "DN") -> np.ndarray:
  """cube [..., C, H, W] (C = len(bands), in `units`) -> normalized float32, as in training."""
  from data_pipelines import transforms  # pylint: disable=g-import-not-at-top
  if not norm:
    raise ValueError("these weights store no normalization; pass normalized inputs "
                     "(normalize=False)")
  if units not in UNITS:
    raise ValueError(f"units must be one of {UNITS}, got {units!r}")
  mode = norm.get("mode") or norm.get("method") or ("zscore" if "mean" in norm else None)
  mode = _MODE_ALIASES.get(mode, mode)
  x = np.asarray(cube, np.float32)
  if mode == "none":
    return x
  if mode == "minmax":
    return transforms.minmax(x, float(norm.get("eps", 1e-12)))
  if mode not in ("zscore", "sentinel_clip"):
    raise ValueError(f"unknown normalization mode {mode!r}; known: {transforms.NORMALIZATIONS}")
  mean, std, stat_units = _stats(norm, bands)
  if stat_units != units:
    x = x * DN_PER_REFLECTANCE if stat_units == "DN" else x / DN_PER_REFLECTANCE
  if mode == "zscore":
    return transforms.zscore(x, mean, std)
  return transforms.sentinel_clip(x, mean, std, bool(norm.get("quantize", True)))
