"""Scenes read by rows: a multi-band GeoTIFF / COG, or a folder of single-band files.

`open_scene(path, bands=None)`:
  - a file: a multi-band GeoTIFF or COG (any GDAL raster; a URL is read through
    data_pipelines/storage.py, as STAC assets are); band names from `bands` (a set name
    or a comma list, in file order) or the file's band descriptions (data_pipelines/geotiff.py);
  - a STAC item (`.json`, a path or URL): its GeoTIFF / COG assets per band (stac_assets), read
    as a folder of band files (below);
  - a folder of one file per band, named `..._B02.tif`, `..._B8A.jp2`, `..._B02_10m.jp2`
    (BigEarthNet, OSCD, the SAFE granules' IMG_DATA): the grid is the finest band's (10 m);
    20 m and 60 m bands are upsampled by their integer factor with the same resampling as
    ingestion (data_pipelines/resample.py, bicubic, negative overshoot clipped to 0, as
    data_pipelines/oscd.py), read with a margin of coarse pixels so that a band of rows equals
    the same rows of the whole band upsampled; a band a few pixels short of the grid is padded
    at the bottom / right by repeating its edge (at most oscd.MAX_PAD_PX), as OSCD's reader.

Every read is of whole rows of the scene's grid: `read_rows(r0, r1, names)` -> (float32 DN
[len(names), r1 - r0, W], valid [r1 - r0, W]); valid is False where any band is nodata or
masked (GDAL's masks: the nodata value, an alpha band, an internal mask) or not finite.

A second scene (change detection) is brought onto the first one's grid (`align`):
  "exact"     the grids must be equal (CRS, transform, size), else refused;
  "auto"      (default) equal grids as they are; the same footprint (same CRS, top-left corner
              within a pixel, size within MAX_PAD_PX) pixel-aligned as OSCD's dates are (pixel
              (i, j) of both, a short edge padded); anything else reprojected onto the first
              grid (bilinear, GDAL's warper through a WarpedVRT, windowed) for a multi-band
              file, refused for a folder of band files (stack it into one GeoTIFF first).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import warnings
from collections.abc import Sequence

import numpy as np

from data_pipelines import oscd, resample, schema
from data_pipelines.errors import BadInputError

ALIGN = ("auto", "exact")
_BAND_FILE = re.compile(r"_(B\d\d|B8A)(?:_\d+m)?\.(?:tif|tiff|jp2)$", re.IGNORECASE)
_MARGIN = 3   # coarse pixels read beyond a band of rows (bicubic reaches 2)
# GDAL's block cache during reads (MB): two rows of 512 px blocks of a 12-band uint16 scene
# 10980 px wide (the reads move down by one window stride). GDAL's default, 5% of RAM, would
# fill up with the blocks of rows long passed as a scene is read down.
READ_CACHE_MB = 256


@dataclasses.dataclass(frozen=True)
class Grid:
  crs: object
  transform: object   # affine.Affine
  height: int
  width: int

  def __str__(self) -> str:
    t = self.transform
    return (f"{self.height}x{self.width} px, CRS {self.crs}, origin ({t.c:.6g}, {t.f:.6g}), "
            f"pixel ({t.a:.6g}, {t.e:.6g})")


def _rasterio():
  import rasterio  # pylint: disable=g-import-not-at-top
  return rasterio


def _open(path) -> object:
  if "://" in str(path):   # http(s), gs, s3, ...: through data_pipelines.storage
    from data_pipelines import stac_assets  # pylint: disable=g-import-not-at-top
    return stac_assets.cached_raster(str(path))
  rasterio = _rasterio()
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
      return rasterio.open(path)
  except Exception as e:  # rasterio/GDAL errors for unreadable files
    raise BadInputError(path, "file", f"cannot open raster: {e}") from e


def _grid(ds) -> Grid:
  return Grid(ds.crs, ds.transform, ds.height, ds.width)


def _clamped(start: int, stop: int, size: int) -> tuple[int, int, np.ndarray]:
  """Rows [start, stop) of a target grid on a source of `size` rows (edge repeated past its
  end): (first, last + 1) to read and the index of each target row into what is read."""
  idx = np.clip(np.arange(start, stop), 0, size - 1)
  a, b = int(idx.min()), int(idx.max()) + 1
  return a, b, idx - a


def _read_window(ds, path, indexes, r0, r1, c0, c1) -> tuple[np.ndarray, np.ndarray]:
  """(values float32 [len(indexes), r1 - r0, c1 - c0], masks [same] uint8) of one window."""
  from rasterio.windows import Window  # pylint: disable=g-import-not-at-top
  win = Window(c0, r0, c1 - c0, r1 - r0)
  try:
    with _rasterio().Env(GDAL_CACHEMAX=READ_CACHE_MB):
      values = ds.read(indexes, window=win).astype(np.float32)
      masks = ds.read_masks(indexes, window=win)
  except Exception as e:  # GDAL read errors: a truncated or corrupt block
    raise BadInputError(path, f"window rows {r0}:{r1} cols {c0}:{c1}",
                        f"cannot read: {e}") from e
  return values, masks


class RasterScene:
  """A multi-band raster file (optionally reprojected / pixel-aligned onto another grid)."""

  def __init__(self, path, bands: Sequence[str] | str | None = None):
    from data_pipelines import geotiff  # pylint: disable=g-import-not-at-top
    self.path = str(path)
    self.ds = _open(path)
    self.bands = (schema.parse_band_list(bands) if bands is not None
                  else geotiff._names_from_descriptions(  # pylint: disable=protected-access
                      path, self.ds.descriptions))
    if len(self.bands) != self.ds.count:
      raise BadInputError(path, "bands", f"file has {self.ds.count} planes, {len(self.bands)} "
                          f"band names were given ({list(self.bands)})")
    self.grid = self.own = _grid(self.ds)
    self.nodata = self.ds.nodata
    self.alpha: int | None = None   # the alpha band of a reprojection

  def onto(self, grid: Grid, how: str) -> None:
    """Reads onto `grid` from now on: "pixel" (index-aligned) or "reproject"."""
    if how == "reproject":
      from rasterio.enums import Resampling  # pylint: disable=g-import-not-at-top
      from rasterio.vrt import WarpedVRT  # pylint: disable=g-import-not-at-top
      # Without a nodata value, an alpha band marks what lies outside the source.
      self.ds = WarpedVRT(self.ds, crs=grid.crs, transform=grid.transform, width=grid.width,
                          height=grid.height, resampling=Resampling.bilinear,
                          add_alpha=self.ds.nodata is None)
      self.alpha = self.ds.count if self.ds.nodata is None else None
      self.own = _grid(self.ds)
    self.grid = grid

  def read_rows(self, r0: int, r1: int, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    idx = [self.bands.index(n) + 1 for n in names] + ([self.alpha] if self.alpha else [])
    a, b, rows = _clamped(r0, r1, self.own.height)
    c, d, cols = _clamped(0, self.grid.width, self.own.width)
    values, masks = _read_window(self.ds, self.path, idx, a, b, c, d)
    if len(rows) != values.shape[1] or len(cols) != values.shape[2]:   # edge repeated
      values, masks = values[:, rows][:, :, cols], masks[:, rows][:, :, cols]
    if self.alpha:
      masks[-1], values = values[-1] > 0, values[:-1]
    valid = (masks > 0).all(0) & np.isfinite(values).all(0)
    return values, valid


class BandFolderScene:
  """A folder of single-band files (module docstring)."""

  def __init__(self, path):
    files: dict[str, pathlib.Path] = {}
    for f in sorted(pathlib.Path(path).rglob("*")):
      m = _BAND_FILE.search(f.name)
      if m and f.is_file():
        band = schema.normalize_band_name(m.group(1))
        if band in files:
          raise BadInputError(f, band, f"second file for band {band} (first: {files[band]})")
        files[band] = f
    if not files:
      raise BadInputError(path, "bands", "no band files (*_B02.tif, *_B8A.jp2, ...) found")
    self._set_files(path, files, _open)

  def _set_files(self, path, files: dict, opener) -> None:
    """Opens {band: file or href} with `opener` and checks each band fits the finest grid."""
    self.path = str(path)
    self.files = files
    self.bands = tuple(b for b in schema.BANDS if b in files)
    self.res = min(schema.BANDS[b].resolution_m for b in self.bands)
    ref = next(b for b in self.bands if schema.BANDS[b].resolution_m == self.res)
    self.ds = {b: opener(f) for b, f in files.items()}
    self.grid = self.own = _grid(self.ds[ref])
    self.nodata = self.ds[ref].nodata
    for b, ds in self.ds.items():
      f = schema.BANDS[b].resolution_m // self.res
      short = max(self.grid.height - ds.height * f, self.grid.width - ds.width * f)
      if short > oscd.MAX_PAD_PX:
        raise BadInputError(files[b], b, f"band of {ds.height}x{ds.width} px upsampled x{f} is "
                            f"{short} px short of the {self.res} m grid "
                            f"{self.grid.height}x{self.grid.width}")

  def onto(self, grid: Grid, how: str) -> None:
    if how != "pixel":
      raise BadInputError(self.path, "grid", f"on another grid ({self.own}) than the first "
                          f"scene ({grid}); a folder of band files is not reprojected: stack "
                          "it into one GeoTIFF first")
    self.grid = grid

  def _band_rows(self, band: str, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
    """One band's rows [r0, r1) of the grid, full width (upsampled; edge past its end)."""
    ds = self.ds[band]
    f = schema.BANDS[band].resolution_m // self.res
    up_h, up_w = ds.height * f, ds.width * f
    a, b, rows = _clamped(r0, r1, up_h)
    _, _, cols = _clamped(0, self.grid.width, up_w)
    ca, cb = max(a // f - _MARGIN, 0), min(-(-b // f) + _MARGIN, ds.height)
    values, masks = _read_window(ds, self.files[band], [1], ca, cb, 0, ds.width)
    values, masks = values[0], masks[0]
    if f > 1:
      values = resample.resize(values, ((cb - ca) * f, up_w), "bicubic")
      np.maximum(values, 0.0, out=values)
      masks = np.repeat(np.repeat(masks, f, 0), f, 1)
    off = a - ca * f
    return values[rows + off][:, cols], masks[rows + off][:, cols]

  def read_rows(self, r0: int, r1: int, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    out = np.empty((len(names), r1 - r0, self.grid.width), np.float32)
    valid = np.ones((r1 - r0, self.grid.width), bool)
    for i, band in enumerate(names):
      out[i], mask = self._band_rows(band, r0, r1)
      valid &= mask > 0
    valid &= np.isfinite(out).all(0)
    return out, valid


class StacItemScene(BandFolderScene):
  """A STAC item (JSON file or URL): one single-band GeoTIFF / COG asset per band
  (data_pipelines/stac_assets.py: band_hrefs), read and resampled as a band folder."""

  def __init__(self, href: str):
    from data_pipelines import stac_assets, stac_catalog  # pylint: disable=g-import-not-at-top
    items = stac_catalog.load_items(href)
    if len(items) != 1:
      raise BadInputError(href, "item", f"holds {len(items)} items; give one STAC item")
    files = {}
    for band in schema.BANDS:
      try:
        files[band] = stac_assets.band_hrefs(items[0], [band])[band]
      except BadInputError:
        continue   # a band the item does not carry; prepare.check_bands names what is missing
    if not files:
      raise BadInputError(href, "bands", "no GeoTIFF asset holds a Sentinel-2 band")
    self._set_files(href, files, stac_assets.cached_raster)


def _is_stac_item(path: str) -> bool:
  return str(path).lower().split("?")[0].endswith(".json")


def open_scene(path, bands: Sequence[str] | str | None = None):
  """A RasterScene (file), BandFolderScene (folder) or StacItemScene (a .json STAC item)
  (module docstring)."""
  p = pathlib.Path(str(path)).expanduser()
  if p.is_dir() or _is_stac_item(str(path)):
    if bands is not None:
      raise ValueError(f"{path}: the band names of a folder or STAC item come from its files; "
                       "drop --bands")
    return BandFolderScene(p) if p.is_dir() else StacItemScene(str(p if p.exists() else path))
  if not p.exists() and "://" not in str(path):
    raise FileNotFoundError(f"{p}: no such scene file or folder")
  return RasterScene(path if "://" in str(path) else p, bands)


def _same_footprint(a: Grid, b: Grid) -> bool:
  ta, tb = a.transform, b.transform
  return (a.crs == b.crs and abs(ta.c - tb.c) <= abs(ta.a) and abs(ta.f - tb.f) <= abs(ta.e)
          and abs(a.height - b.height) <= oscd.MAX_PAD_PX
          and abs(a.width - b.width) <= oscd.MAX_PAD_PX
          and abs(a.height * ta.e - b.height * tb.e) <= abs(ta.e)
          and abs(a.width * ta.a - b.width * tb.a) <= abs(ta.a))


def align(first, other, mode: str = "auto") -> str:
  """Brings `other` onto `first`'s grid (module docstring); returns how: "same", "pixel" or
  "reproject"."""
  if mode not in ALIGN:
    raise ValueError(f"align must be one of {ALIGN}, got {mode!r}")
  a, b = first.grid, other.grid
  same = (a.crs == b.crs and (a.height, a.width) == (b.height, b.width)
          and a.transform.almost_equals(b.transform))
  if same:
    return "same"
  if mode == "exact":
    raise BadInputError(other.path, "grid", f"{b} differs from the first scene's {a} "
                        f"({first.path})")
  how = "pixel" if _same_footprint(a, b) else "reproject"
  other.onto(a, how)
  return how
