"""BigEarthNet-S2 patch folders: one single-band uint16 GeoTIFF per band + a labels JSON.

Layout (v1.0): `<patch>/<patch>_B01.tif ... _B12.tif, _B8A.tif` and
`<patch>/<patch>_labels_metadata.json` (CORINE-43 labels, UTM box, projection, L1C tile
source, acquisition date). Bands come at 10 m (120x120: B02 B03 B04 B08), 20 m (60x60: B05
B06 B07 B8A B11 B12) and 60 m (20x20: B01 B09); there is no B10 (L2A).

`read_bigearthnet_patch` resamples every band onto the grid of B02 with GDAL's warper
(`rasterio.warp.reproject`), which uses each file's own georeferencing, so alignment follows
from the geotransforms rather than from assumed pixel offsets; it then stacks the bands in
SpectralGPT order. rasterio is imported lazily (only ingestion needs it).
"""

from __future__ import annotations

import json
import pathlib
import re
import warnings
from typing import Any

import numpy as np

from data_pipelines import labels as labels_lib
from data_pipelines import local_raster
from data_pipelines import schema
from data_pipelines.checksums import verify_sha256sums  # re-exported
from data_pipelines.errors import BadInputError
from data_pipelines.reader_meta import ReaderMeta
from data_pipelines.resample import resize_cube  # re-exported: (bands,H,W) -> (bands,S,S)

__all__ = ["read_bigearthnet_patch", "load_bigearthnet_patch", "resize_cube", "verify_sha256sums",
           "list_bigearthnet_patches", "RESAMPLING_METHODS"]

RESAMPLING_METHODS = ("nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "average")
_ALIASES = {"bicubic": "cubic"}
_REFERENCE_BAND = "B02"   # a 10 m band defines the output grid


def _resampling_enum(name: str):
  from rasterio.enums import Resampling  # pylint: disable=g-import-not-at-top
  key = _ALIASES.get(name, name)
  if key not in RESAMPLING_METHODS:
    raise ValueError(f"unknown resampling {name!r}; choose from {RESAMPLING_METHODS}")
  return Resampling[key]


def list_bigearthnet_patches(root: str | pathlib.Path) -> list[pathlib.Path]:
  """Patch folders under `root` (or [root] if root is itself a patch folder), sorted."""
  root = pathlib.Path(root)
  if list(root.glob(f"*_{_REFERENCE_BAND}.tif")):
    return [root]
  return sorted(p for p in root.iterdir() if p.is_dir() and list(p.glob(f"*_{_REFERENCE_BAND}.tif")))


def _band_file(folder: pathlib.Path, band: str) -> pathlib.Path:
  path = folder / f"{folder.name}_{band}.tif"
  if path.exists():
    return path
  hits = sorted(folder.glob(f"*_{band}.tif"))
  if not hits:
    raise BadInputError(path, band, "missing band file")
  return hits[0]


def _read_band(path: pathlib.Path, band: str):
  """Open one single-band GeoTIFF and validate it; returns (array, profile dict)."""
  if path.stat().st_size == 0:
    raise BadInputError(path, "file", "empty file")
  try:
    with local_raster.open_local(path) as src:
      if src.count != 1:
        raise BadInputError(path, band, f"expected 1 band, file has {src.count}")
      if src.dtypes[0] != "uint16":
        raise BadInputError(path, "dtype", f"band {band} is {src.dtypes[0]}, expected uint16 DN")
      arr = src.read(1)
      prof = {"crs": src.crs, "transform": src.transform, "bounds": tuple(src.bounds),
              "shape": (src.height, src.width), "res": src.res}
  except BadInputError:
    raise
  except Exception as e:  # rasterio raises RasterioIOError/CPLE_* for unreadable files
    raise BadInputError(path, "file", f"cannot read GeoTIFF: {e}") from e
  if prof["crs"] is None:
    raise BadInputError(path, "crs", f"band {band} has no CRS")
  return arr, prof


def _check_alignment(path, band, prof, ref) -> None:
  if prof["crs"] != ref["crs"]:
    raise BadInputError(path, "crs", f"band {band} CRS {prof['crs']} differs from "
                        f"{_REFERENCE_BAND} CRS {ref['crs']}")
  tol = 0.01 * min(abs(prof["res"][0]), abs(ref["res"][0]))
  if not np.allclose(prof["bounds"], ref["bounds"], atol=tol, rtol=0):
    raise BadInputError(path, "bounds", f"band {band} bounds {prof['bounds']} differ from "
                        f"{_REFERENCE_BAND} bounds {ref['bounds']}")
  want_res = schema.BANDS[band].resolution_m
  width = ref["bounds"][2] - ref["bounds"][0]
  height = ref["bounds"][3] - ref["bounds"][1]
  want_shape = (round(height / want_res), round(width / want_res))
  if prof["shape"] != want_shape:
    raise BadInputError(path, "shape", f"band {band} has shape {prof['shape']}, "
                        f"expected {want_shape} at {want_res} m")
  if not np.allclose(np.abs(prof["res"]), want_res, rtol=1e-3):
    raise BadInputError(path, "shape", f"band {band} pixel size {prof['res']} m, "
                        f"expected {want_res} m (native Sentinel-2 resolution)")


def _read_labels_json(folder: pathlib.Path) -> dict[str, Any]:
  hits = sorted(folder.glob("*_labels_metadata.json"))
  if not hits:
    return {}
  try:
    return json.loads(hits[0].read_text())
  except (OSError, ValueError) as e:
    raise BadInputError(hits[0], "labels", f"unreadable labels JSON: {e}") from e


def _metadata(folder, ref, meta_json, bands, resampling) -> dict[str, Any]:
  tile = str(meta_json.get("tile_source", ""))
  product_id = tile[:-5] if tile.endswith(".SAFE") else tile
  date = str(meta_json.get("acquisition_date", ""))
  if not date:   # fall back to the folder name: S2A_MSIL2A_20170613T101031_...
    m = re.search(r"_(\d{8})T(\d{6})", folder.name)
    date = f"{m.group(1)[:4]}-{m.group(1)[4:6]}-{m.group(1)[6:]}" if m else ""
  label_names = list(meta_json.get("labels", []))
  try:
    labels19 = labels_lib.bigearthnet_indices(label_names, "bigearthnet19")
  except KeyError as e:
    hits = sorted(folder.glob("*labels_metadata.json")) or [folder]
    raise BadInputError(hits[0], "labels", e.args[0] if e.args else str(e)) from e
  epsg = ref["crs"].to_epsg()
  return ReaderMeta({
      "patch_id": folder.name,
      "bands": list(bands),
      "labels": label_names,
      "labels19": labels19,
      "product_id": product_id,
      "processing_baseline": schema.processing_baseline(product_id),
      "radio_add_offset": schema.radio_add_offset(product_id, date or None),
      "crs": f"EPSG:{epsg}" if epsg else ref["crs"].to_wkt(),
      "bounds": [float(v) for v in ref["bounds"]],  # left, bottom, right, top (CRS units)
      "date": date.replace(" ", "T"),
      "resampling": resampling,
      "source": str(folder),
  })


@local_raster.no_cloud_session()
def read_bigearthnet_patch(folder: str | pathlib.Path, *, resampling: str = "bilinear",
                           bands: tuple[str, ...] = schema.SPECTRALGPT_BANDS,
                           ) -> tuple[np.ndarray, dict[str, Any]]:
  """Read a BigEarthNet-S2 patch folder onto its 10 m grid.

  Args:
    folder: the patch folder (`<patch>/<patch>_Bxx.tif`).
    resampling: GDAL method for 20 m / 60 m bands ("bilinear", "cubic", "nearest", ...).
    bands: output band order (names); default SpectralGPT's B01..B08, B8A, B09, B11, B12.

  Returns:
    cube: float32 [len(bands), H, W] (120x120 for BigEarthNet) of digital numbers
      (reflectance x 10000; see metadata["radio_add_offset"]).
    metadata: bands (names in cube order; the former key "band_names" still reads, with a
      DeprecationWarning), labels (CORINE-43 names), labels19 (indices), product_id, crs,
      bounds, date, patch_id, processing_baseline, radio_add_offset, resampling, source.

  Raises:
    BadInputError naming the file and field: missing band, empty/unreadable file, wrong
    dtype, CRS/bounds mismatch, wrong shape for the band's native resolution.
  """
  from rasterio import warp  # pylint: disable=g-import-not-at-top
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise BadInputError(folder, "file", "not a BigEarthNet patch folder")
  method = _resampling_enum(resampling)
  bands = tuple(schema.normalize_band_name(b) for b in bands)
  ref_arr, ref = _read_band(_band_file(folder, _REFERENCE_BAND), _REFERENCE_BAND)
  out = np.empty((len(bands),) + ref["shape"], np.float32)
  coarse: dict[tuple, list[tuple[int, np.ndarray, dict]]] = {}  # grid -> (index, band, prof)
  for i, band in enumerate(bands):
    if band == "B10":
      raise BadInputError(folder, band, "BigEarthNet-S2 is L2A: B10 does not exist")
    path = _band_file(folder, band)
    arr, prof = (ref_arr, ref) if band == _REFERENCE_BAND else _read_band(path, band)
    _check_alignment(path, band, prof, ref)
    if prof["shape"] == ref["shape"]:
      out[i] = arr
    else:
      coarse.setdefault((prof["shape"], tuple(prof["transform"])), []).append((i, arr, prof))
  # One reproject per grid (20 m, 60 m): each call costs a few GDAL environments, each a
  # boto3 session when AWS credentials are set (see local_raster).
  for group in coarse.values():
    index = [i for i, _, _ in group]
    dst = np.empty((len(group),) + ref["shape"], np.float32)
    prof = group[0][2]
    warp.reproject(source=np.stack([a for _, a, _ in group]).astype(np.float32),
                   destination=dst, src_transform=prof["transform"], src_crs=prof["crs"],
                   dst_transform=ref["transform"], dst_crs=ref["crs"], resampling=method)
    out[index] = dst
  return out, _metadata(folder, ref, _read_labels_json(folder), bands, resampling)


def load_bigearthnet_patch(folder: str | pathlib.Path, **kwargs: Any
                           ) -> tuple[np.ndarray, dict[str, Any]]:
  """Deprecated name of `read_bigearthnet_patch` (kept for one release)."""
  warnings.warn("load_bigearthnet_patch is deprecated and will be removed in the next release; "
                "use read_bigearthnet_patch (also exported by data_pipelines.readers)",
                DeprecationWarning, stacklevel=2)
  return read_bigearthnet_patch(folder, **kwargs)
