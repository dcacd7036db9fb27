"""Band descriptors (sensors.Band) from an input's own metadata.

  from_stac_eo_bands(item["assets"][k]["eo:bands"])   STAC eo:bands: name, center_wavelength and
                                                       full_width_half_max (micrometres)
  from_descriptions(descriptions, tags, sensor=...)   GeoTIFF band descriptions (names of a
                                                       table sensor) and per-band tags
                                                       "wavelength"/"fwhm" (ENVI/GDAL style)
  from_geotiff(path, sensor=...)                       both, read with rasterio

Where a band carries its own wavelength, that wins; else its name is looked up in `sensor`
(default Sentinel-2); a band with neither raises ValueError naming it.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from data_pipelines import local_raster
from data_pipelines import sensors as sensors_lib

_UNITS_TO_NM = {"nm": 1.0, "nanometers": 1.0, "nanometres": 1.0, "um": 1000.0,
                "micrometers": 1000.0, "micrometres": 1000.0, "micrometer": 1000.0,
                "microns": 1000.0, "mm": 1.0e6}


def _number(value: Any) -> float | None:
  try:
    out = float(value)
  except (TypeError, ValueError):
    return None
  return out if math.isfinite(out) else None


def _by_name(name: str, sensor: str, where: str) -> sensors_lib.Band:
  try:
    return sensors_lib.sensor(sensor).band(name)
  except ValueError:
    raise ValueError(f"{where}: band {name!r} has no known wavelength (no wavelength in its "
                     f"metadata and not a band of sensor {sensor!r}); pass --sensor or "
                     "bands=") from None


def from_stac_eo_bands(eo_bands: Sequence[Mapping[str, Any]], *, sensor: str = "sentinel2",
                       gsd_m: float | None = None, where: str = "eo:bands"
                       ) -> tuple[sensors_lib.Band, ...]:
  """STAC `eo:bands` entries -> Bands (wavelengths in um per the eo extension)."""
  out = []
  for i, entry in enumerate(eo_bands):
    name = str(entry.get("name") or entry.get("common_name") or f"band {i + 1}")
    centre = _number(entry.get("center_wavelength"))
    if centre is None:
      out.append(_by_name(name, sensor, where))
      continue
    fwhm = _number(entry.get("full_width_half_max"))
    gsd = gsd_m if gsd_m is not None else _number(entry.get("gsd")) or 0.0
    out.append(sensors_lib.Band(name, centre * 1000.0, (fwhm or 0.0) * 1000.0, gsd))
  sensors_lib.check(out)
  return tuple(out)


def from_descriptions(descriptions: Sequence[str | None],
                      tags: Sequence[Mapping[str, str]] | None = None, *,
                      sensor: str = "sentinel2", gsd_m: float = 0.0, where: str = "GeoTIFF"
                      ) -> tuple[sensors_lib.Band, ...]:
  """Per-band descriptions (and tags with "wavelength", "fwhm", "wavelength_units") -> Bands."""
  tags = list(tags) if tags is not None else [{}] * len(descriptions)
  out = []
  for i, (desc, tag) in enumerate(zip(descriptions, tags)):
    name = (desc or "").strip() or f"band {i + 1}"
    low = {k.lower(): v for k, v in tag.items()}
    centre = _number(low.get("wavelength"))
    if centre is None:
      out.append(_by_name(name, sensor, where))
      continue
    units = str(low.get("wavelength_units", "nm")).strip().lower()
    if units not in _UNITS_TO_NM:
      raise ValueError(f"{where}: band {name!r} has wavelength_units {units!r}; known: "
                       f"{sorted(_UNITS_TO_NM)}")
    scale = _UNITS_TO_NM[units]
    fwhm = _number(low.get("fwhm")) or 0.0
    out.append(sensors_lib.Band(name, centre * scale, fwhm * scale, gsd_m))
  sensors_lib.check(out)
  return tuple(out)


def from_geotiff(path: str, *, sensor: str = "sentinel2") -> tuple[sensors_lib.Band, ...]:
  """Bands of a GeoTIFF from its band descriptions and per-band wavelength tags."""
  with local_raster.open_local(path) as src:
    tags = [src.tags(i) for i in range(1, src.count + 1)]
    gsd = float(abs(src.transform.a)) if src.crs is not None else 0.0
    return from_descriptions(src.descriptions, tags, sensor=sensor, gsd_m=gsd, where=str(path))
