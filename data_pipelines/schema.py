"""Sentinel-2 band facts: the single source of truth for names, order, resolution and units.

Every place in the project that needs a band order imports it from here. Selection and
reordering are always by band *name* (`select_bands`), never by position, because the common
Sentinel-2 products disagree on positions:

* L1C (top-of-atmosphere) has 13 bands; L2A (surface reflectance) has 12, because B10 (cirrus)
  is only used for the atmospheric correction and is not delivered.
* B8A sits after B08 in ESA's product order, but EuroSAT-MS GeoTIFFs store it *last*
  (B01..B10, B11, B12, B8A). The official SpectralGPT EuroSAT recipe drops index 10 of those
  files, which is B11, not B10 (see `EUROSAT_OFFICIAL_DROPPED_ORDER`).
* Digital numbers (DN, uint16) are reflectance x 10000 (`QUANTIFICATION_VALUE`). Products
  from processing baseline 04.00 on (ESA switched on 2022-01-25) add a radiometric offset:
  reflectance = (DN + BOA/RADIO_ADD_OFFSET) / 10000 with RADIO_ADD_OFFSET = -1000, i.e. the
  stored DN are 1000 higher than before for the same surface (`radio_add_offset`,
  `harmonize_dn`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where used: configs load this module without it
  import numpy as np


@dataclasses.dataclass(frozen=True)
class Band:
  """One Sentinel-2 spectral band.

  Attributes:
    name: ESA name, zero padded ("B01", "B8A").
    resolution_m: native ground sampling distance in metres (10, 20 or 60).
    center_nm: approximate central wavelength (S2A), nanometres.
    description: short human name.
  """
  name: str
  resolution_m: int
  center_nm: float
  description: str


_BANDS = (
    Band("B01", 60, 442.7, "coastal aerosol"),
    Band("B02", 10, 492.4, "blue"),
    Band("B03", 10, 559.8, "green"),
    Band("B04", 10, 664.6, "red"),
    Band("B05", 20, 704.1, "red edge 1"),
    Band("B06", 20, 740.5, "red edge 2"),
    Band("B07", 20, 782.8, "red edge 3"),
    Band("B08", 10, 832.8, "NIR"),
    Band("B8A", 20, 864.7, "narrow NIR"),
    Band("B09", 60, 945.1, "water vapour"),
    Band("B10", 60, 1373.5, "SWIR cirrus"),
    Band("B11", 20, 1613.7, "SWIR 1"),
    Band("B12", 20, 2202.4, "SWIR 2"),
)
BANDS: dict[str, Band] = {b.name: b for b in _BANDS}

# ESA product order, Level-1C (top of atmosphere): 13 bands.
L1C_BANDS: tuple[str, ...] = tuple(b.name for b in _BANDS)
# Level-2A (bottom of atmosphere): B10 is not delivered.
L2A_BANDS: tuple[str, ...] = tuple(n for n in L1C_BANDS if n != "B10")
# The 12 channels SpectralGPT consumes, in model order (spec section 3): identical to L2A.
SPECTRALGPT_BANDS: tuple[str, ...] = L2A_BANDS
# BigEarthNet-S2 patches hold exactly the L2A bands (one GeoTIFF each).
BIGEARTHNET_BANDS: tuple[str, ...] = L2A_BANDS
# EuroSAT-MS GeoTIFF (and tfds `eurosat/all`) plane order: B8A is LAST.
EUROSAT_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
# What the official recipe actually feeds after `--dropped_bands 10` on raw EuroSAT tifs
# (drops B11, keeps B10). Provided only for parity experiments; never use it for training.
EUROSAT_OFFICIAL_DROPPED_ORDER: tuple[str, ...] = tuple(
    n for i, n in enumerate(EUROSAT_BANDS) if i != 10)

BAND_SETS: dict[str, tuple[str, ...]] = {
    "l1c": L1C_BANDS,
    "l2a": L2A_BANDS,
    "spectralgpt": SPECTRALGPT_BANDS,
    "bigearthnet": BIGEARTHNET_BANDS,
    "eurosat": EUROSAT_BANDS,
    # Parity experiments only: the official EuroSAT input after `--dropped_bands 10` on raw
    # tifs (B11 dropped, B10 kept, B8A last), selected by name from any 13-band record.
    "eurosat_official_drop10": EUROSAT_OFFICIAL_DROPPED_ORDER,
}

QUANTIFICATION_VALUE = 10000.0   # DN = reflectance * 10000
BASELINE_0400_OFFSET = -1000     # RADIO_ADD_OFFSET / BOA_ADD_OFFSET from baseline 04.00 on
BASELINE_0400_START = dt.date(2022, 1, 25)


def normalize_band_name(name: str) -> str:
  """'B1' / 'b01' / 'B8a' -> 'B01' / 'B01' / 'B8A'; raises KeyError for unknown names."""
  n = name.strip().upper()
  m = re.fullmatch(r"B(0?\d|1\d|8A)", n)   # a three-digit b001 is never B01
  if not m:
    raise KeyError(f"unknown Sentinel-2 band name {name!r}")
  core = m.group(1)
  canon = "B8A" if core == "8A" else f"B{int(core):02d}"
  if canon not in BANDS:
    raise KeyError(f"unknown Sentinel-2 band name {name!r}")
  return canon


def band_key(name: str) -> str:
  """The name bands are matched by: a Sentinel-2 name canonical ('b1' -> 'B01'; Landsat OLI
  and HLS names have the same shape), another sensor's name in data_pipelines.sensors (e.g.
  hyperspectral 'b001', SuperDove 'nir') as given; KeyError for any other name."""
  try:
    return normalize_band_name(name)
  except KeyError:
    from data_pipelines import sensors  # pylint: disable=g-import-not-at-top  # imports schema
    if sensors.is_band_name(name):
      return name.strip()
    raise


def parse_band_list(spec: str | Sequence[str]) -> tuple[str, ...]:
  """A band-set name ("spectralgpt", "eurosat", ...), a sensor name of data_pipelines.sensors
  (its bands, e.g. "enmap_like") or comma list ("B02,B03", "b001,b002") -> names."""
  if isinstance(spec, str):
    key = spec.strip().lower()
    if key in BAND_SETS:
      return BAND_SETS[key]
    from data_pipelines import sensors  # pylint: disable=g-import-not-at-top  # imports schema
    if key in sensors.SENSORS:
      spec = [b.name for b in sensors.SENSORS[key].bands]
    else:
      spec = [s for s in spec.split(",") if s.strip()]
  names = tuple(band_key(s) for s in spec)
  if len(set(names)) != len(names):
    raise ValueError(f"duplicate band names in {list(names)}")
  return names


def band_indices(available: Sequence[str], wanted: Sequence[str]) -> list[int]:
  """Positions of `wanted` bands inside `available` (both lists of names)."""
  return list(_band_indices(tuple(available), tuple(wanted)))


@functools.lru_cache(maxsize=256)
def _band_indices(available: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[int, ...]:
  avail = [band_key(b) for b in available]
  index = {b: i for i, b in enumerate(avail)}
  missing = [w for w in wanted if band_key(w) not in index]
  if missing:
    hint = " (B10 does not exist in L2A products)" if "B10" in missing else ""
    raise KeyError(f"bands {missing} not available; have {avail}{hint}")
  return tuple(index[band_key(w)] for w in wanted)


def select_bands(cube: np.ndarray, available: Sequence[str], wanted: Sequence[str],
                 axis: int = -3) -> np.ndarray:
  """Select/reorder bands by name. cube: [..., C, H, W] with C == len(available)."""
  if cube.shape[axis] != len(available):
    raise ValueError(f"cube has {cube.shape[axis]} bands on axis {axis} but "
                     f"{len(available)} band names were given")
  idx = _band_indices(tuple(available), tuple(wanted))
  if idx == tuple(range(len(available))):
    return cube
  return cube.take(idx, axis=axis)


def processing_baseline(product_id: str) -> str | None:
  """'..._N0400_...' -> '04.00'; None when the id carries no baseline."""
  m = re.search(r"_N(\d{2})(\d{2})_", product_id or "")
  return f"{m.group(1)}.{m.group(2)}" if m else None


def radio_add_offset(product_id: str = "", date: str | dt.date | None = None) -> int:
  """The additive DN offset of a product: -1000 from baseline 04.00 on, else 0.

  Uses the baseline in the product id when present (authoritative), otherwise the
  acquisition/processing date (>= 2022-01-25).
  """
  baseline = processing_baseline(product_id)
  if baseline is not None:
    return BASELINE_0400_OFFSET if float(baseline) >= 4.0 else 0
  if date:
    d = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date)[:10])
    return BASELINE_0400_OFFSET if d >= BASELINE_0400_START else 0
  return 0


def harmonize_dn(cube: np.ndarray, offset: int) -> np.ndarray:
  """Apply RADIO_ADD_OFFSET to DN so that all baselines share one scale (clip at 0).

  uint16 in -> uint16 out (the offset is removed in int32, then clipped to [0, 65535]).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  if offset == 0:
    return cube
  if np.issubdtype(cube.dtype, np.integer):
    out = np.clip(cube.astype(np.int32) + offset, 0, np.iinfo(cube.dtype).max)
    return out.astype(cube.dtype)
  return np.maximum(cube + offset, 0).astype(cube.dtype)


def dn_to_reflectance(cube: np.ndarray, offset: int = 0) -> np.ndarray:
  """DN -> surface/TOA reflectance (float32): (DN + offset) / 10000."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  return (cube.astype(np.float32) + offset) / QUANTIFICATION_VALUE


def reflectance_to_dn(refl: np.ndarray, offset: int = 0) -> np.ndarray:
  """Reflectance -> uint16 DN of a product with the given RADIO_ADD_OFFSET."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  dn = np.rint(refl.astype(np.float64) * QUANTIFICATION_VALUE - offset)
  return np.clip(dn, 0, 65535).astype(np.uint16)
