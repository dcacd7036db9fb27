"""From a STAC item to readable rasters: which asset holds which Sentinel-2 band, and opening
an asset's COG by href (local path, http(s)://, gs://, s3:// or any fsspec URL).

Catalogs name the same band differently: Planetary Computer uses asset keys "B02" and
eo:bands names "B02" (common name "blue"); Earth Search v1 uses asset keys "blue",
"rededge1", "nir08" and eo:bands names equal to the key. `band_hrefs` matches, per band, in
this order: an asset key that is the band's name (B02, b2), an asset whose single eo:bands
(or STAC 1.1 `bands`) entry has that name, then the Earth Search names of `S2_ASSET_NAMES`
as key or band name, then the band's eo:common_name when exactly one asset carries it.
Only GeoTIFF assets (type image/tiff or a .tif/.tiff href) are used, so the JPEG 2000
copies Earth Search also lists are never picked.

Reads from URLs go through one data_pipelines.storage file object per asset (its endpoint
settings and one-line errors), opened with a small block size so that a windowed read fetches
only the COG header and the blocks it needs (GDAL's sidecar probes are answered "not found"
without a request).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

from data_pipelines import schema, storage
from data_pipelines.errors import BadInputError
from data_pipelines.stac_catalog import is_url, resolve_href, self_href

# Earth Search v1 / STAC common names of each Sentinel-2 band (key or eo:bands name).
S2_ASSET_NAMES: dict[str, tuple[str, ...]] = {
    "B01": ("coastal",), "B02": ("blue",), "B03": ("green",), "B04": ("red",),
    "B05": ("rededge1",), "B06": ("rededge2",), "B07": ("rededge3",), "B08": ("nir",),
    "B8A": ("nir08", "nir_narrow"), "B09": ("nir09", "watervapor"), "B10": ("cirrus",),
    "B11": ("swir16",), "B12": ("swir22",),
}
# eo:common_name of each band; "rededge" is shared by B05..B07 and so never decides alone.
S2_COMMON_NAMES: dict[str, str] = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B08": "nir",
    "B8A": "nir08", "B09": "nir09", "B10": "cirrus", "B11": "swir16", "B12": "swir22",
}
SCL_KEYS = ("scl", "SCL", "SCL_20m")
DEFAULT_BLOCK_SIZE = 1 << 18   # bytes per HTTP/object-store range request
_GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


def _as_dict(item: Any) -> dict[str, Any]:
  """A pystac.Item or an item dict -> the item dict."""
  return item.to_dict() if hasattr(item, "to_dict") else item


def _asset_bands(asset: dict[str, Any]) -> list[dict[str, Any]]:
  return list(asset.get("eo:bands") or asset.get("bands") or [])


def _is_geotiff(asset: dict[str, Any]) -> bool:
  kind = str(asset.get("type", "")).lower()
  href = str(asset.get("href", "")).lower().split("?")[0]
  return "tiff" in kind or href.endswith((".tif", ".tiff"))


def _canonical(name: str) -> str | None:
  try:
    return schema.normalize_band_name(name)
  except KeyError:
    return None


def _find_asset(assets: dict[str, dict[str, Any]], band: str) -> str | None:
  """The key of the asset holding `band` (None when none does)."""
  tiffs = {k: a for k, a in assets.items() if _is_geotiff(a)}
  for key in tiffs:
    if _canonical(key) == band:
      return key
  single = {k: _asset_bands(a)[0] for k, a in tiffs.items() if len(_asset_bands(a)) == 1}
  for key, info in single.items():
    if _canonical(str(info.get("name", ""))) == band:
      return key
  names = S2_ASSET_NAMES[band]
  for key, info in single.items():
    if key.lower() in names or str(info.get("name", "")).lower() in names:
      return key
  common = [k for k, info in single.items()
            if str(info.get("common_name") or info.get("eo:common_name") or "").lower()
            == S2_COMMON_NAMES.get(band)]
  return common[0] if len(common) == 1 else None


def item_base(item: Any) -> str:
  """The href relative asset hrefs of `item` resolve against ('' when it has none)."""
  return self_href(_as_dict(item))


def band_hrefs(item: Any, bands: Sequence[str]) -> dict[str, str]:
  """{band: absolute asset href} for a pystac.Item or item dict.

  Raises BadInputError naming the item and the first band no GeoTIFF asset holds.
  """
  item = _as_dict(item)
  assets, base = item.get("assets") or {}, item_base(item)
  out = {}
  for band in (schema.normalize_band_name(b) for b in bands):
    key = _find_asset(assets, band)
    if key is None:
      raise BadInputError(item.get("id", base), band, f"no GeoTIFF asset holds band {band} "
                          f"(asset keys: {sorted(assets)})")
    out[band] = resolve_href(str(assets[key]["href"]), base)
  return out


def scl_href(item: Any) -> str | None:
  """The href of the item's scene classification (SCL) asset, None for L1C items."""
  item = _as_dict(item)
  assets = item.get("assets") or {}
  for key in SCL_KEYS:
    if key in assets and _is_geotiff(assets[key]):
      return resolve_href(str(assets[key]["href"]), item_base(item))
  return None


def _opener(href: str, block_size: int, errors: list[BaseException]):
  """A rasterio opener serving `href` only (sidecar probes: FileNotFoundError, no request),
  through data_pipelines.storage (its endpoint settings; failures named StorageError)."""

  def open_file(fp: str, mode: str = "rb"):
    if fp != href:
      raise FileNotFoundError(fp)
    try:
      return storage.open(href, mode, block_size=block_size, cache_type="bytes")
    except BaseException as e:
      errors.append(e)
      raise
  return open_file


def _open(href: str, block_size: int) -> Any:
  import rasterio  # pylint: disable=g-import-not-at-top
  from rasterio.session import DummySession  # pylint: disable=g-import-not-at-top
  errors: list[BaseException] = []
  try:  # no rasterio cloud session: URLs are read by the opener (see local_raster)
    with rasterio.Env(session=DummySession(), **_GDAL_ENV):
      if is_url(href):
        return rasterio.open(href, opener=_opener(href, block_size, errors))
      return rasterio.open(href)
  except Exception as e:  # RasterioIOError hides the transport error: report the cause
    cause = errors[0] if errors else e
    raise BadInputError(href, "asset", f"cannot open: {type(cause).__name__}: {cause}") from e


@contextlib.contextmanager
def open_raster(href: str, block_size: int = DEFAULT_BLOCK_SIZE) -> Iterator[Any]:
  """A rasterio dataset over the COG at `href` (path or fsspec URL); BadInputError naming the
  href when it cannot be opened (missing object, unreachable server, not a GeoTIFF)."""
  with _open(href, block_size) as ds:
    yield ds


@functools.lru_cache(maxsize=64)
def cached_raster(href: str, block_size: int = DEFAULT_BLOCK_SIZE) -> Any:
  """An open dataset kept for reuse by the tiles of an item within one process, so that
  GDAL's block cache serves the COG blocks neighbouring tiles share (closed when evicted and
  collected)."""
  return _open(href, block_size)
