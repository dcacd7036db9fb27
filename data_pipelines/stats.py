"""Per-band normalization statistics, each with its provenance, and a streaming accumulator.

Statistics are keyed by band *name*: `NormStats.for_bands(names)` returns mean/std in the
order the caller needs, so a 13-value EuroSAT list applies correctly to a 12-band SpectralGPT
cube (B10 dropped, B8A moved) without positional bugs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data_pipelines import schema


@dataclasses.dataclass(frozen=True)
class NormStats:
  """Per-band mean and standard deviation.

  Attributes:
    name: registry key.
    bands: band names, in the order of `mean` and `std`.
    mean, std: per band, in `units`.
    units: "DN" (reflectance x 10000) or "reflectance".
    provenance: where the numbers come from and any caveat.
  """
  name: str
  bands: tuple[str, ...]
  mean: tuple[float, ...]
  std: tuple[float, ...]
  units: str
  provenance: str

  def __post_init__(self):
    if not len(self.bands) == len(self.mean) == len(self.std):
      raise ValueError(f"stats {self.name}: {len(self.bands)} bands but {len(self.mean)} means "
                       f"and {len(self.std)} stds")

  def for_bands(self, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float32 [len(bands)] in the requested band order (by name)."""
    idx = schema.band_indices(self.bands, bands)
    return (np.asarray(self.mean, np.float32)[idx], np.asarray(self.std, np.float32)[idx])

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


# The official SpectralGPT EuroSAT z-score statistics (spec section 3, `EuroSat` dataset in
# the official util/datasets.py). The official code applies them positionally to the raw
# 13-plane EuroSAT tifs, i.e. in EuroSAT plane order with B8A last, so they are named that way
# here, which reproduces the official per-plane arithmetic exactly. Caveat recorded in the
# spec: the value at B10 (2645.5) is implausible for cirrus and the B11 value (582.7 / 472.4)
# equals fMoW's B09 entry, so these numbers are not genuine EuroSAT statistics.
EUROSAT_OFFICIAL = NormStats(
    name="eurosat_official",
    bands=schema.EUROSAT_BANDS,
    mean=(752.40087073, 884.29673756, 1144.16202635, 1297.47289228, 1624.90992062,
          2194.6423161, 2422.21248945, 2517.76053101, 2581.64687018, 2645.51888987,
          582.72633433, 2368.51236873, 1805.06846033),
    std=(1108.02887453, 1155.15170768, 1183.6292542, 1368.11351514, 1370.265037,
         1355.55390699, 1416.51487101, 1474.78900051, 1439.3086061, 1582.28010962,
         472.37967789, 1455.52084939, 1343.48379601),
    units="DN",
    provenance=("SpectralGPT official EuroSAT fine-tuning (util/datasets.py EuroSat, "
                "transforms.Normalize on raw EuroSAT-MS planes, B8A last). Suspicious values at "
                "B10/B11, see ../shared/spec/SPECTRALGPT.md section 3."),
)

# fMoW-Sentinel statistics without B10, in SpectralGPT order; used by the official
# BigEarthNet fine-tuning through SentinelNormalize (clip((x-(m-2s))/(4s)*255, 0, 255)).
FMOW_S2_OFFICIAL = NormStats(
    name="fmow_s2_official",
    bands=schema.SPECTRALGPT_BANDS,
    mean=(1370.19151926, 1184.3824625, 1120.77120066, 1136.26026392, 1263.73947144,
          1645.40315151, 1846.87040806, 1762.59530783, 1972.62420416, 582.72633433,
          1732.16362238, 1247.91870117),
    std=(633.15169573, 650.2842772, 712.12507725, 965.23119807, 948.9819932, 1108.06650639,
         1258.36394548, 1233.1492281, 1364.38688993, 472.37967789, 1310.36996126,
         1087.6020813),
    units="DN",
    provenance=("fMoW-Sentinel 13-band means/stds with B10 removed, as used by SpectralGPT's "
                "BigEarthNetFinetuneDataset + SentinelNormalize (official util/datasets.py)."),
)

REGISTRY: dict[str, NormStats] = {s.name: s for s in (EUROSAT_OFFICIAL, FMOW_S2_OFFICIAL)}


def get_stats(name: str) -> NormStats:
  if name not in REGISTRY:
    raise KeyError(f"unknown normalization statistics {name!r}; known: {sorted(REGISTRY)} "
                   "(or 'manifest' for the statistics computed at ingestion)")
  return REGISTRY[name]


class RunningBandStats:
  """Streaming per-band count/mean/M2/min/max (Chan et al. parallel update), float64."""

  def __init__(self, bands: Sequence[str]):
    self.bands = tuple(bands)
    c = len(self.bands)
    self.count = 0
    self.mean = np.zeros(c)
    self.m2 = np.zeros(c)
    self.min = np.full(c, np.inf)
    self.max = np.full(c, -np.inf)

  def update(self, cube: np.ndarray) -> None:
    """cube: [C, H, W] or [T, C, H, W] with C == len(bands)."""
    c = len(self.bands)
    x = np.moveaxis(np.asarray(cube), -3, 0).reshape(c, -1).astype(np.float64)
    n = x.shape[1]
    if n == 0:
      return
    mean_b = x.mean(axis=1)
    m2_b = ((x - mean_b[:, None]) ** 2).sum(axis=1)
    self._combine(n, mean_b, m2_b, x.min(axis=1), x.max(axis=1))

  def _combine(self, n, mean_b, m2_b, min_b, max_b) -> None:
    total = self.count + n
    delta = mean_b - self.mean
    self.mean = self.mean + delta * (n / total)
    self.m2 = self.m2 + m2_b + delta ** 2 * (self.count * n / total)
    self.min = np.minimum(self.min, min_b)
    self.max = np.maximum(self.max, max_b)
    self.count = total

  def merge(self, other: "RunningBandStats") -> None:
    if other.bands != self.bands:
      raise ValueError(f"cannot merge stats over bands {other.bands} into {self.bands}")
    if other.count:
      self._combine(other.count, other.mean, other.m2, other.min, other.max)

  @property
  def std(self) -> np.ndarray:
    return np.sqrt(self.m2 / max(self.count, 1))

  def to_json(self) -> dict[str, Any]:
    return {"bands": list(self.bands), "pixels_per_band": int(self.count),
            "mean": self.mean.tolist(), "std": self.std.tolist(), "m2": self.m2.tolist(),
            "min": self.min.tolist(), "max": self.max.tolist()}

  @classmethod
  def from_json(cls, d: Mapping[str, Any]) -> "RunningBandStats":
    s = cls(d["bands"])
    s.count = int(d["pixels_per_band"])
    if s.count:
      s.mean, s.m2 = np.asarray(d["mean"], float), np.asarray(d["m2"], float)
      s.min, s.max = np.asarray(d["min"], float), np.asarray(d["max"], float)
    return s


def stats_from_manifest(manifest: Mapping[str, Any], path: str = "manifest") -> NormStats:
  """NormStats from the statistics an ingestion run computed (see shard_writer)."""
  st = manifest.get("stats")
  if not st or not st.get("pixels_per_band"):
    raise ValueError(f"{path}: manifest has no statistics")
  return NormStats(name="manifest", bands=tuple(st["bands"]), mean=tuple(st["mean"]),
                   std=tuple(st["std"]), units=manifest.get("units", "DN"),
                   provenance=f"computed at ingestion over {manifest.get('num_records')} records "
                   f"({path}; sources: {json.dumps(manifest.get('sources', [])[:3])}...)")
