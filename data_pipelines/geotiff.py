"""Multi-band GeoTIFF reader (e.g. EuroSAT-MS tifs, pre-stacked fMoW/BigEarthNet cubes).

Band names are never guessed from positions: they come from the caller (`bands=`, a band set
such as "eurosat" or a comma list) or from the file's own band descriptions.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines import local_raster
from data_pipelines import schema
from data_pipelines.errors import BadInputError
from data_pipelines.reader_meta import ReaderMeta

ALLOWED_DTYPES = ("uint8", "uint16", "int16", "float32", "float64")


def _names_from_descriptions(path, descriptions) -> tuple[str, ...]:
  try:
    return tuple(schema.normalize_band_name(d or "") for d in descriptions)
  except KeyError as e:
    raise BadInputError(path, "bands", "band names are not given and the file's band "
                        f"descriptions {list(descriptions)} are not Sentinel-2 names; pass "
                        "--bands (e.g. 'eurosat' for EuroSAT-MS tifs)") from e


def _sensor_names(path, sensor: str, names) -> tuple[str, ...]:
  """The sensor's own spelling of each band name (`--sensor`; e.g. Landsat OLI 'B1' stays
  'B1', not Sentinel-2's B01); BadInputError naming a band the sensor does not have."""
  from data_pipelines import sensors  # pylint: disable=g-import-not-at-top
  try:
    return tuple(b.name for b in sensors.lookup(sensor, names))
  except ValueError as e:
    raise BadInputError(path, "bands", str(e)) from e


@local_raster.no_cloud_session()
def read_geotiff(path: str | pathlib.Path, bands: Sequence[str] | str | None = None, *,
                 expect_shape: tuple[int, int] | None = None,
                 expect_crs: str | None = None,
                 sensor: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
  """Reads a multi-band GeoTIFF.

  Args:
    path: the file.
    bands: names of the file's planes in file order (band set name or list); default: the
      file's band descriptions.
    expect_shape: (H, W) every file must have, if given.
    expect_crs: CRS (e.g. "EPSG:32633") every file must have, if given.
    sensor: a data_pipelines.sensors name: the band names (given or the descriptions) are
      that sensor's, kept as it spells them (default: Sentinel-2 names).

  Returns:
    cube: [C, H, W] in the file's dtype (float64 is narrowed to float32).
    meta: bands (names of the cube's planes), crs, bounds, source, date (TIFFTAG_DATETIME
      if present). The former key "band_names" still reads, with a DeprecationWarning.

  Raises:
    BadInputError naming the file and field: empty/unreadable file, missing band (fewer
    planes than names), unsupported dtype, wrong shape, CRS mismatch, non-finite values.
  """
  import rasterio  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  if not path.exists():
    raise BadInputError(path, "file", "file not found")
  if path.stat().st_size == 0:
    raise BadInputError(path, "file", "empty file")
  try:
    with local_raster.open_local(path) as src:
      if sensor:
        names = _sensor_names(path, sensor, bands if bands is not None else
                              [d or "" for d in src.descriptions])
      else:
        names = (schema.parse_band_list(bands) if bands is not None
                 else _names_from_descriptions(path, src.descriptions))
      if src.count < len(names):
        missing = names[src.count:]
        raise BadInputError(path, missing[0], f"missing band(s) {list(missing)}: file has "
                            f"{src.count} planes, {len(names)} band names were given")
      if src.count > len(names):
        raise BadInputError(path, "bands", f"file has {src.count} planes but only "
                            f"{len(names)} band names were given ({list(names)})")
      dtype = src.dtypes[0]
      if len(set(src.dtypes)) != 1 or dtype not in ALLOWED_DTYPES:
        raise BadInputError(path, "dtype", f"unsupported dtype(s) {sorted(set(src.dtypes))}; "
                            f"allowed {ALLOWED_DTYPES}")
      if expect_shape is not None and (src.height, src.width) != tuple(expect_shape):
        raise BadInputError(path, "shape", f"shape {(src.height, src.width)} != expected "
                            f"{tuple(expect_shape)}")
      crs = src.crs
      if expect_crs is not None and (crs is None or crs != rasterio.crs.CRS.from_user_input(
          expect_crs)):
        raise BadInputError(path, "crs", f"CRS {crs} != expected {expect_crs}")
      cube = src.read()
      meta = ReaderMeta({"bands": list(names), "source": str(path),
                         "crs": (f"EPSG:{crs.to_epsg()}" if crs and crs.to_epsg() else
                                 (crs.to_wkt() if crs else "")),
                         "bounds": [float(v) for v in src.bounds],
                         "date": src.tags().get("TIFFTAG_DATETIME", "")})
  except BadInputError:
    raise
  except Exception as e:  # rasterio/GDAL errors for unreadable or non-TIFF files
    raise BadInputError(path, "file", f"cannot read GeoTIFF: {e}") from e
  if cube.dtype == np.float64:
    cube = cube.astype(np.float32)
  if cube.dtype.kind == "f" and not np.all(np.isfinite(cube)):
    bad = np.argwhere(~np.isfinite(cube))[0]
    raise BadInputError(path, names[bad[0]], f"{int((~np.isfinite(cube)).sum())} non-finite "
                        f"values (first at band {names[bad[0]]}, row {bad[1]}, col {bad[2]})")
  return cube, meta
