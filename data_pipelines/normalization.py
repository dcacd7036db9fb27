"""Input normalization, once: the per-mode arithmetic, the statistics it needs, and the record.

Modes follow the official SpectralGPT recipes (spec section 3); all act per band, and on
[..., C, H, W] cubes, so each date of a [T, C, H, W] series is normalized on its own:
  minmax        per image, per band: (x - min) / (max - min + eps)        (pretraining)
  zscore        (x - mean) / std with named dataset statistics               (EuroSAT)
  sentinel_clip clip((x - (mean - 2 std)) / (4 std) * 255, 0, 255) -> uint8 -> / 255
                (the official SentinelNormalize + ToTensor, BigEarthNet fine-tuning)
  none          values unchanged (float32)

The *normalization record* (`norm_record`) is what a checkpoint's meta and an export manifest
store so that inference prepares inputs as training did; `normalize_cube` applies it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data_pipelines import schema
from data_pipelines import stats as stats_lib

NORMALIZATIONS = ("minmax", "zscore", "sentinel_clip", "none")
MODE_ALIASES = {"minmax_per_image": "minmax", "sentinel_normalize": "sentinel_clip",
                "sentinel": "sentinel_clip"}
UNITS = ("DN", "reflectance")


# ------------------------------------------------------------------ per-mode arithmetic

def minmax(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
  """Per image, per band min-max over (H, W): [..., C, H, W] float32 in [0, 1]."""
  lo = x.min(axis=(-2, -1), keepdims=True)
  hi = x.max(axis=(-2, -1), keepdims=True)
  y = np.subtract(x, lo, dtype=np.float32)
  y /= hi.astype(np.float32) - lo.astype(np.float32) + np.float32(eps)   # no int overflow
  return y


def zscore(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
  """(x - mean) / std per band: [..., C, H, W] float32; mean, std [C]."""
  y = np.subtract(x, mean[:, None, None], dtype=np.float32)
  y /= std[:, None, None]
  return y


def sentinel_clip(x: np.ndarray, mean: np.ndarray, std: np.ndarray,
                  quantize: bool = True) -> np.ndarray:
  """Official SentinelNormalize then ToTensor: [0, 1] float32 (uint8 steps if quantize)."""
  lo = (mean - 2 * std)[:, None, None]
  y = np.subtract(x, lo, dtype=np.float32)
  y *= (255.0 / (4 * std))[:, None, None]
  np.clip(y, 0.0, 255.0, out=y)
  if quantize:
    y = y.astype(np.uint8)   # truncation, as numpy's astype in the official code
  return (y / np.float32(255.0)).astype(np.float32)


def apply(x: np.ndarray, mode: str, mean: np.ndarray | None = None,
          std: np.ndarray | None = None, eps: float = 1e-12, quantize: bool = True,
          ) -> np.ndarray:
  """x [..., C, H, W] -> float32 normalized with `mode` (one of NORMALIZATIONS)."""
  if mode == "minmax":
    return minmax(x, eps)
  if mode == "zscore":
    return zscore(x, mean, std)
  if mode == "sentinel_clip":
    return sentinel_clip(x, mean, std, quantize)
  if mode == "none":
    return x.astype(np.float32)
  raise ValueError(f"normalization {mode!r} not in {NORMALIZATIONS}")


# ------------------------------------------------------------------ statistics

def resolve_stats(name: str, bands: Sequence[str], manifest: Mapping[str, Any] | None = None,
                  where: str = "manifest") -> tuple[np.ndarray, np.ndarray, str]:
  """(mean, std) float32 [len(bands)] in `bands` order, and their units.

  name: a `stats.REGISTRY` key, or "manifest" for the statistics of `manifest` (the shard
  directory's manifest.json, computed at ingestion; `where` names it in errors).
  """
  if name == "manifest":
    if manifest is None:
      raise ValueError("data.stats='manifest' needs a shard directory with manifest.json")
    st = stats_lib.stats_from_manifest(manifest, where)
  else:
    st = stats_lib.get_stats(name)
  mean, std = st.for_bands(bands)
  return mean, std, st.units


def norm_record(data_cfg, manifest: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """The normalization record of `config.data`: mode, image_size and eps or statistics.

  Raises (ValueError, KeyError) when zscore/sentinel_clip statistics cannot be resolved.
  """
  norm: dict[str, Any] = {"mode": data_cfg.normalization, "image_size": int(data_cfg.image_size)}
  if data_cfg.normalization == "minmax":
    norm["eps"] = float(data_cfg.minmax_eps)
  elif data_cfg.normalization in ("zscore", "sentinel_clip"):
    norm["stats"] = data_cfg.stats
    norm["quantize"] = bool(data_cfg.sentinel_clip_quantize)
    mean, std, units = resolve_stats(data_cfg.stats, schema.parse_band_list(data_cfg.bands),
                                     manifest, str(data_cfg.paths or "manifest"))
    norm.update(mean=[float(v) for v in mean], std=[float(v) for v in std], units=units)
  return norm


def _record_stats(norm: Mapping[str, Any], bands: Sequence[str],
                  ) -> tuple[np.ndarray, np.ndarray, str]:
  """(mean, std) in `bands` order, and their units, from a normalization record."""
  if "mean" in norm and "std" in norm:
    src = norm.get("bands") or list(bands)
    idx = schema.band_indices(src, bands)
    return (np.asarray(norm["mean"], np.float32)[idx], np.asarray(norm["std"], np.float32)[idx],
            norm.get("units", "DN"))
  name = norm.get("stats") or norm.get("name")
  if name in stats_lib.REGISTRY:
    return resolve_stats(name, bands)
  raise ValueError(f"normalization {dict(norm)} needs per-band mean and std, and neither these "
                   "nor a known statistics name are stored")


def normalize_cube(cube: np.ndarray, bands: Sequence[str], norm: Mapping[str, Any] | None, *,
                   units: str = "DN") -> np.ndarray:
  """cube [..., C, H, W] (C = len(bands), in `units`) -> normalized float32, as in training.

  norm: a normalization record (checkpoint meta / export manifest); its statistics are
  converted to `units` (DN = reflectance x 10000) by scaling the input.
  """
  if not norm:
    raise ValueError("these weights store no normalization; pass normalized inputs "
                     "(normalize=False)")
  if units not in UNITS:
    raise ValueError(f"units must be one of {UNITS}, got {units!r}")
  mode = norm.get("mode") or norm.get("method") or ("zscore" if "mean" in norm else None)
  mode = MODE_ALIASES.get(mode, mode)
  x = np.asarray(cube, np.float32)
  if mode in ("none", "minmax"):
    return apply(x, mode, eps=float(norm.get("eps", 1e-12)))
  if mode not in ("zscore", "sentinel_clip"):
    raise ValueError(f"unknown normalization mode {mode!r}; known: {NORMALIZATIONS}")
  mean, std, stat_units = _record_stats(norm, bands)
  if stat_units != units:
    q = schema.QUANTIFICATION_VALUE
    x = x * q if stat_units == "DN" else x / q
  return apply(x, mode, mean, std, quantize=bool(norm.get("quantize", True)))
