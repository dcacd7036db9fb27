"""Optical sensors as data: band names, centre wavelength and FWHM (nm), GSD (m), with sources.

  lookup("landsat8_oli", bands="B2,B3,B4,B5")   -> (Band, ...) by `--sensor` / `bands=`
  hyperspectral("my_sensor", centres, fwhm)      -> Sensor from a wavelength list
  check(bands)                                   -> ValueError naming a bad band
  group_bands(bands)                             -> input order for the model's groups of three
  model_wavelengths(bands, spectral_positions)   -> (centres, fwhm) a model call takes

Reading a file's own band metadata (GeoTIFF descriptions/tags, STAC eo:bands) is in
`band_metadata`. Sources of the numbers (nominal values: per-unit spectral responses differ by
a few nm, e.g. S2A vs S2B):
  ESA, "Sentinel-2 Spectral Response Functions (S2-SRF)", COPE-GSEG-EOPG-TN-15-0007, v3.x:
    S2A and S2B central wavelength and bandwidth; Sentinel-2 MSI User Guide: nominal values.
  USGS, "Landsat 8-9 Operational Land Imager (OLI) band designations" (spectral ranges, um).
  NASA LP DAAC, "Harmonized Landsat Sentinel-2 (HLS) Product User Guide" v2.0, table of S30 and
    L30 bands (spectral ranges, um).
  Planet, "PlanetScope 8-band asset: band order, wavelengths, and metadata" (SuperDove, PSB.SD).
Band ranges are given as centre = midpoint, FWHM = range width.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

import numpy as np

from data_pipelines import schema


@dataclasses.dataclass(frozen=True)
class Band:
  """One band: name as the sensor's products spell it, centre and FWHM (nm), GSD (m)."""

  name: str
  centre_nm: float
  fwhm_nm: float
  gsd_m: float


@dataclasses.dataclass(frozen=True)
class Sensor:
  """A named band list (in the products' band order) and where its numbers come from."""

  name: str
  bands: tuple[Band, ...]
  source: str

  def band(self, name: str) -> Band:
    key = _key(name)
    for b in self.bands:
      if _key(b.name) == key:
        return b
    raise ValueError(f"band {name!r} has no known wavelength: sensor {self.name!r} has "
                     f"{[b.name for b in self.bands]}")


def _key(name: str) -> str:
  """Canonical band name for matching: case-free, band numbers without leading zeros
  ("B01" == "b1", "B8A" == "b8a", "coastal_blue" as is). Only a two-digit number loses its
  zero: a hyperspectral "b001" stays itself, never Sentinel-2's B01."""
  n = name.strip().lower()
  m = re.fullmatch(r"b(\d{1,2})(a?)", n)
  return f"b{int(m.group(1))}{m.group(2)}" if m else n


def _from_ranges(rows, gsd) -> tuple[Band, ...]:
  """(name, lo_um, hi_um[, gsd]) -> Bands with centre = midpoint, FWHM = width (nm)."""
  out = []
  for row in rows:
    name, lo, hi = row[:3]
    out.append(Band(name, round((lo + hi) * 500.0, 3), round((hi - lo) * 1000.0, 3),
                    row[3] if len(row) > 3 else gsd))
  return tuple(out)


_S2_NAMES = schema.L1C_BANDS
_S2_GSD = {b.name: float(b.resolution_m) for b in schema.BANDS.values()}
# (centre, bandwidth) nm per L1C band B01..B12 (with B8A after B08, B10 cirrus included).
_S2_NOMINAL = ((443, 20), (490, 65), (560, 35), (665, 30), (705, 15), (740, 15), (783, 20),
               (842, 115), (865, 20), (945, 20), (1375, 30), (1610, 90), (2190, 180))
_S2A = ((442.7, 21), (492.4, 66), (559.8, 36), (664.6, 31), (704.1, 15), (740.5, 15),
        (782.8, 20), (832.8, 106), (864.7, 21), (945.1, 20), (1373.5, 31), (1613.7, 91),
        (2202.4, 175))
_S2B = ((442.2, 21), (492.1, 66), (559.0, 36), (664.9, 31), (703.8, 16), (739.1, 15),
        (779.7, 20), (832.9, 106), (864.0, 22), (943.2, 21), (1376.9, 30), (1610.4, 94),
        (2185.7, 185))


def _s2(values, names=_S2_NAMES) -> tuple[Band, ...]:
  table = dict(zip(_S2_NAMES, values))
  return tuple(Band(n, float(table[n][0]), float(table[n][1]), _S2_GSD[n]) for n in names)


_ESA = "ESA Sentinel-2 SRF document COPE-GSEG-EOPG-TN-15-0007 / MSI User Guide"
_OLI = (("B1", 0.43, 0.45), ("B2", 0.45, 0.51), ("B3", 0.53, 0.59), ("B4", 0.64, 0.67),
        ("B5", 0.85, 0.88), ("B6", 1.57, 1.65), ("B7", 2.11, 2.29), ("B8", 0.50, 0.68, 15.0),
        ("B9", 1.36, 1.38))
_USGS = "USGS Landsat 8-9 OLI band designations"
_HLS = "NASA LP DAAC HLS Product User Guide v2.0 (S30/L30 band table)"
_HLS_S30 = (("B01", 0.43, 0.45), ("B02", 0.45, 0.51), ("B03", 0.53, 0.59), ("B04", 0.64, 0.67),
            ("B05", 0.69, 0.71), ("B06", 0.73, 0.75), ("B07", 0.77, 0.79), ("B08", 0.78, 0.88),
            ("B8A", 0.85, 0.88), ("B09", 0.93, 0.95), ("B10", 1.36, 1.38), ("B11", 1.57, 1.65),
            ("B12", 2.11, 2.29))
_HLS_L30 = (("B01", 0.43, 0.45), ("B02", 0.45, 0.51), ("B03", 0.53, 0.59), ("B04", 0.64, 0.67),
            ("B05", 0.85, 0.88), ("B06", 1.57, 1.65), ("B07", 2.11, 2.29), ("B09", 1.36, 1.38))
_SUPERDOVE = (("coastal_blue", 0.431, 0.452), ("blue", 0.465, 0.515), ("green_i", 0.513, 0.549),
              ("green", 0.547, 0.583), ("yellow", 0.600, 0.620), ("red", 0.650, 0.680),
              ("rededge", 0.697, 0.713), ("nir", 0.845, 0.885))


def hyperspectral(name: str, centres: Sequence[float], fwhm: Sequence[float] | float,
                  gsd_m: float = 30.0, source: str = "user wavelength list") -> Sensor:
  """A sensor from a wavelength list (nm); bands are named b001, b002, ... in list order."""
  centres = [float(c) for c in centres]
  widths = [float(fwhm)] * len(centres) if np.isscalar(fwhm) else [float(f) for f in fwhm]
  if len(widths) != len(centres):
    raise ValueError(f"{name}: {len(widths)} fwhm values for {len(centres)} wavelengths")
  bands = tuple(Band(f"b{i + 1:03d}", round(c, 3), w, gsd_m)
                for i, (c, w) in enumerate(zip(centres, widths)))
  return Sensor(name, bands, source)


def _table() -> dict[str, Sensor]:
  l2a = tuple(n for n in _S2_NAMES if n != "B10")
  sensors = [
      Sensor("sentinel2_l2a", _s2(_S2_NOMINAL, l2a), _ESA + " (nominal)"),
      Sensor("sentinel2_l1c", _s2(_S2_NOMINAL), _ESA + " (nominal)"),
      Sensor("sentinel2a", _s2(_S2A), _ESA + " (S2A)"),
      Sensor("sentinel2b", _s2(_S2B), _ESA + " (S2B)"),
      Sensor("landsat8_oli", _from_ranges(_OLI, 30.0), _USGS),
      Sensor("landsat9_oli", _from_ranges(_OLI, 30.0), _USGS + " (OLI-2, same bands)"),
      Sensor("hls_s30", _from_ranges(_HLS_S30, 30.0), _HLS),
      Sensor("hls_l30", _from_ranges(_HLS_L30, 30.0), _HLS),
      Sensor("planet_superdove", _from_ranges(_SUPERDOVE, 3.0),
             "Planet PlanetScope 8-band asset (SuperDove)"),
      # Hyperspectral examples (evenly spaced stand-ins, not the instruments' exact grids):
      # EnMAP 420-2450 nm (VNIR ~6.5 nm, SWIR ~10 nm sampling, 30 m), PRISMA 400-2500 nm
      # (<= 12 nm, 30 m).
      hyperspectral("enmap_like", np.linspace(420.0, 2450.0, 224), 10.0, 30.0,
                    "EnMAP-like: 224 bands 420-2450 nm"),
      hyperspectral("prisma_like", np.linspace(400.0, 2500.0, 239), 12.0, 30.0,
                    "PRISMA-like: 239 bands 400-2500 nm"),
  ]
  out = {s.name: s for s in sensors}
  out["sentinel2"] = out["sentinel2_l2a"]
  return out


SENSORS: dict[str, Sensor] = _table()


def is_band_name(name: str) -> bool:
  """Whether a band of the table, or a hyperspectral list's b001-style name, is called `name`
  (how data_pipelines.schema accepts names that are not Sentinel-2's)."""
  key = _key(name)
  return bool(re.fullmatch(r"b\d{3}", key)) or any(
      _key(b.name) == key for s in SENSORS.values() for b in s.bands)


def sensor(name: str) -> Sensor:
  """The Sensor of a table name (`--sensor`)."""
  key = name.strip().lower()
  if key not in SENSORS:
    raise ValueError(f"unknown sensor {name!r}; known: {', '.join(sorted(SENSORS))}")
  return SENSORS[key]


def lookup(sensor_name: str = "sentinel2", bands: str | Sequence[str] | None = None
           ) -> tuple[Band, ...]:
  """Bands of a sensor by name (`--sensor`), optionally a subset in the given order (`bands=`,
  names or a comma list; for Sentinel-2 also a schema band-set name such as "spectralgpt")."""
  s = sensor(sensor_name)
  if bands is None:
    return s.bands
  if isinstance(bands, str):
    if s.name.startswith("sentinel2") and bands.strip().lower() in schema.BAND_SETS:
      bands = schema.BAND_SETS[bands.strip().lower()]
    else:
      bands = [b for b in bands.split(",") if b.strip()]
  out = tuple(s.band(b) for b in bands)
  check(out)
  return out


def check(bands: Sequence[Band], t_patch: int = 3) -> None:
  """ValueError naming the band: unknown or non-positive wavelength, duplicate wavelength,
  fewer than t_patch bands."""
  seen: dict[float, str] = {}
  for b in bands:
    if b.centre_nm is None or not np.isfinite(b.centre_nm) or b.centre_nm <= 0:
      raise ValueError(f"band {b.name!r} has no known wavelength ({b.centre_nm})")
    if b.centre_nm in seen:
      raise ValueError(f"band {b.name!r} duplicates the wavelength {b.centre_nm} nm of band "
                       f"{seen[b.centre_nm]!r}")
    seen[b.centre_nm] = b.name
  if len(bands) < t_patch:
    names = [b.name for b in bands]
    raise ValueError(f"bands {names}: {len(bands)} band(s), a model token needs {t_patch}")


def group_bands(bands: Sequence[Band], t_patch: int = 3) -> tuple[int, ...]:
  """Input band indices in the order the model groups them: sorted by centre wavelength, cut
  into consecutive groups of t_patch; a remainder is padded by repeating the longest-wavelength
  band (e.g. RGBN -> B,G,R | N,N,N), so every band is seen and no value is invented.

  Use as cube[..., order, :, :] with `[bands[i] for i in order]` as the model's bands.
  """
  check(bands, t_patch)
  order = sorted(range(len(bands)), key=lambda i: bands[i].centre_nm)
  order += [order[-1]] * (-len(order) % t_patch)
  return tuple(order)


def model_wavelengths(bands: Sequence[Band], spectral_positions: str = "wavelength",
                      t_patch: int = 3) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
  """(centres, fwhm) for a model call (`wavelengths=`, `fwhm=`) of bands already in group order.

  A model with spectral_positions "table" takes only the 12 SpectralGPT bands in their order
  (any Sentinel-2 unit or HLS S30: names match and centres lie within half the nominal FWHM):
  returns None for them and raises ValueError naming the first band that is not one of them.
  """
  if spectral_positions == "table":
    reference = lookup("sentinel2_l2a", "spectralgpt")
    for i, ref in enumerate(reference):
      got = bands[i] if i < len(bands) else None
      if got is None or _key(got.name) != _key(ref.name) or \
          abs(got.centre_nm - ref.centre_nm) > ref.fwhm_nm / 2:
        what = (f"band {got.name!r} ({got.centre_nm} nm) at position {i}" if got else
                f"band {ref.name} is missing (position {i})")
        raise ValueError(f"{what}: a model with spectral_positions='table' "
                         f"takes the 12 SpectralGPT bands in order (expected {ref.name}, "
                         f"{ref.centre_nm} nm); use spectral_positions='wavelength'")
    if len(bands) > len(reference):
      raise ValueError(f"band {bands[len(reference)].name!r} is beyond the 12 SpectralGPT "
                       "bands; use spectral_positions='wavelength'")
    return None
  if len(bands) % t_patch or not bands:
    raise ValueError(f"{len(bands)} bands are not groups of {t_patch}: order them with "
                     "group_bands first")
  return (tuple(float(b.centre_nm) for b in bands), tuple(float(b.fwhm_nm) for b in bands))


def band_wavelengths(bands: Sequence[str], sensor_name: str) -> list[dict[str, Any]]:
  """Per band of the manifest: {"name", "centre_nm", "fwhm_nm"} from the sensor table
  ("sentinel2_l1c" unless the ingest names a sensor), the
  wavelengths null for a band the table does not know."""
  out = []
  for name in bands:
    try:
      b = sensor(sensor_name).band(name)
      out.append({"name": name, "centre_nm": b.centre_nm, "fwhm_nm": b.fwhm_nm})
    except ValueError:
      out.append({"name": name, "centre_nm": None, "fwhm_nm": None})
  return out
