"""Sentinel-2 STAC items -> patch records: windowed COG reads of patch_size tiles.

Each item's output grid is the grid of its finest requested band (10 m when any 10 m band is
asked for). Tiles are patch_size squares laid over that grid every `stride` pixels, or
centred on given lon/lat points. Every band is read through a window: a band on the grid is
read as is, a 20 m / 60 m band is read with a margin of a few pixels and resampled onto the
tile with `data_pipelines.resample` (pixel-is-area, the same maths as the other sources), so
the result equals resampling the whole band and cutting the tile out.

Masking happens while the tiles are listed, from the item's SCL asset (L2A): a tile whose
fraction of pixels in `mask_classes` (default 0 no-data, 3 cloud shadow, 8/9 cloud medium /
high probability, 10 thin cirrus) exceeds `max_masked` is skipped and counted as "nodata"
(class 0) or "cloud". Items without SCL (L1C) are checked for no-data on their grid band.

Every record carries its provenance: item_id, key (item id + tile row/col), crs, bounds of
the tile (CRS units), date (the item's datetime), product_id and source (the item's href).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from absl import logging

from data_pipelines import resample
from data_pipelines import schema
from data_pipelines import stac_assets
from data_pipelines import stac_catalog
from data_pipelines.errors import BadInputError
from data_pipelines.shard_writer import Item

DEFAULT_MASK_CLASSES = (0, 3, 8, 9, 10)   # SCL: no data, cloud shadow, cloud med/high, cirrus
_MARGIN = 3   # coarse pixels read around a tile: the bicubic kernel reaches 2


@dataclasses.dataclass(frozen=True)
class Grid:
  """An item's output pixel grid: CRS, affine transform (6 coefficients), height, width."""
  crs: str
  transform: tuple[float, ...]
  height: int
  width: int

  def bounds(self, row: int, col: int, size: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of the size x size tile at (row, col)."""
    a, _, c, _, e, f = self.transform
    x0, y0 = c + a * col, f + e * row
    x1, y1 = c + a * (col + size), f + e * (row + size)
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _crs_text(crs) -> str:
  epsg = crs.to_epsg() if crs else None
  return f"EPSG:{epsg}" if epsg else (crs.to_wkt() if crs else "")


def grid_band(bands: Sequence[str]) -> str:
  """The requested band whose native grid becomes the output grid (the finest, first)."""
  return min(bands, key=lambda b: schema.BANDS[b].resolution_m)


def item_grid(href: str, block_size: int) -> Grid:
  ds = stac_assets.cached_raster(href, block_size)
  if ds.crs is None:
    raise BadInputError(href, "crs", "asset has no CRS")
  return Grid(_crs_text(ds.crs), tuple(ds.transform)[:6], ds.height, ds.width)


def grid_tiles(grid: Grid, size: int, stride: int) -> list[tuple[int, int]]:
  """(row, col) of every whole tile over the grid, row-major."""
  return [(r, c) for r in range(0, grid.height - size + 1, stride)
          for c in range(0, grid.width - size + 1, stride)]


def point_tiles(grid: Grid, points: Sequence[tuple[float, float]], size: int
                ) -> tuple[list[tuple[int, int]], int]:
  """Tiles centred on lon/lat `points` that lie wholly on the grid; and how many do not."""
  from rasterio import warp  # pylint: disable=g-import-not-at-top
  from affine import Affine  # pylint: disable=g-import-not-at-top
  if not points:
    return [], 0
  xs, ys = warp.transform("EPSG:4326", grid.crs, [p[0] for p in points],
                          [p[1] for p in points])
  inverse = ~Affine(*grid.transform)
  tiles, outside = [], 0
  for x, y in zip(xs, ys):
    col, row = inverse @ (x, y)
    r0, c0 = math.floor(row) - size // 2, math.floor(col) - size // 2
    if 0 <= r0 <= grid.height - size and 0 <= c0 <= grid.width - size:
      tiles.append((r0, c0))
    else:
      outside += 1
  return tiles, outside


def _window(ds, bounds, href: str):
  """The tile's (row, col, height, width) in `ds` pixels, possibly fractional."""
  from rasterio import windows  # pylint: disable=g-import-not-at-top
  win = windows.from_bounds(*bounds, transform=ds.transform)
  r, c, h, w = (round(v, 6) for v in (win.row_off, win.col_off, win.height, win.width))
  if r < 0 or c < 0 or r + h > ds.height + 1e-6 or c + w > ds.width + 1e-6:
    raise BadInputError(href, "bounds", f"tile {bounds} lies outside the asset")
  return r, c, h, w


def _read(ds, href: str, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
  from rasterio.windows import Window  # pylint: disable=g-import-not-at-top
  try:
    return ds.read(1, window=Window(cols[0], rows[0], cols[1] - cols[0], rows[1] - rows[0]))
  except Exception as e:  # a server gone mid-read, a truncated object
    raise BadInputError(href, "asset", f"windowed read failed: {type(e).__name__}: {e}") from e


def read_band_tile(href: str, bounds, size: int, method: str = "bicubic",
                   block_size: int = stac_assets.DEFAULT_BLOCK_SIZE) -> np.ndarray:
  """[size, size] of the band at `href` over `bounds`: the window itself when the band is on
  the tile's grid (native dtype), else a resampled window with a margin (float32)."""
  ds = stac_assets.cached_raster(href, block_size)
  r, c, h, w = _window(ds, bounds, href)
  if (h, w) == (size, size) and float(r).is_integer() and float(c).is_integer():
    return _read(ds, href, (int(r), int(r) + size), (int(c), int(c) + size))
  r0, c0 = max(0, math.floor(r) - _MARGIN), max(0, math.floor(c) - _MARGIN)
  r1 = min(ds.height, math.ceil(r + h) + _MARGIN)
  c1 = min(ds.width, math.ceil(c + w) + _MARGIN)
  arr = _read(ds, href, (r0, r1), (c0, c1))
  return resample.resize(arr, (size, size), method, box=(r - r0, c - c0, h, w))


def masked_reason(grid_href: str, scl: str | None, bounds, *,
                  mask_classes: Sequence[int], max_masked: float, block_size: int
                  ) -> str | None:
  """"nodata" / "cloud" when the tile's masked fraction exceeds `max_masked`, else None.

  From the SCL asset (classes in `mask_classes`; class 0 counts as no-data) when there is
  one, else from the grid band's no-data value (0 when the file declares none).
  """
  if scl is not None:
    ds = stac_assets.cached_raster(scl, block_size)
    r, c, h, w = _window(ds, bounds, scl)
    arr = _read(ds, scl, (math.floor(r), math.ceil(r + h)), (math.floor(c), math.ceil(c + w)))
    nodata = float(np.mean(arr == 0)) if 0 in mask_classes else 0.0
    cloud = float(np.mean(np.isin(arr, [k for k in mask_classes if k != 0])))
  else:
    href = grid_href
    ds = stac_assets.cached_raster(href, block_size)
    r, c, h, w = _window(ds, bounds, href)
    arr = _read(ds, href, (math.floor(r), math.ceil(r + h)), (math.floor(c), math.ceil(c + w)))
    nodata, cloud = float(np.mean(arr == (ds.nodata if ds.nodata is not None else 0))), 0.0
  if nodata > max_masked:
    return "nodata"
  return "cloud" if cloud > max_masked else None


def _radio_offset(props: dict[str, Any], product_id: str) -> int:
  """DN offset still in the item's values: 0 when the catalog removed it (Earth Search's
  earthsearch:boa_offset_applied), else by processing baseline / date."""
  if props.get("earthsearch:boa_offset_applied"):
    return 0
  baseline = props.get("s2:processing_baseline")
  if baseline:
    return schema.BASELINE_0400_OFFSET if float(baseline) >= 4.0 else 0
  return schema.radio_add_offset(product_id, props.get("datetime") or None)


def item_provenance(item: dict[str, Any]) -> dict[str, Any]:
  """The record fields every tile of `item` shares."""
  props = item.get("properties") or {}
  product = str(props.get("s2:product_uri") or item["id"]).removesuffix(".SAFE")
  return {"item_id": str(item["id"]), "product_id": product,
          "date": str(props.get("datetime") or props.get("start_datetime") or ""),
          "source": stac_catalog.self_href(item) or str(item["id"]),
          "radio_add_offset": _radio_offset(props, product)}


def load_tile(hrefs: dict[str, str], grid: Grid, provenance: dict[str, Any], row: int,
              col: int, size: int, method: str, block_size: int, harmonize: bool,
              store_dtype: str | None) -> dict[str, Any]:
  """One record: the tile at (row, col) of the item's grid, bands in `hrefs` order."""
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top  # cycle
  bounds = grid.bounds(row, col, size)
  cube = np.stack([read_band_tile(href, bounds, size, method, block_size).astype(np.float32)
                   for href in hrefs.values()])
  rec = {"cube": cube, "bands": list(hrefs), "key": f"{provenance['item_id']}:{row}:{col}",
         "crs": grid.crs, "bounds": [float(v) for v in bounds], **provenance}
  return ingest._finish_cube(rec, harmonize, store_dtype)  # pylint: disable=protected-access


def parse_points(spec: str) -> list[tuple[float, float]]:
  """'lon,lat;lon,lat' or a file: one 'lon,lat' per line (a header line and '#' comments are
  skipped) or a GeoJSON FeatureCollection of Points."""
  path = pathlib.Path(spec)
  if not path.is_file():
    text, where = spec.replace(";", "\n"), "--points"
  elif spec.lower().endswith((".json", ".geojson")):
    doc = stac_catalog.read_json(spec)
    return [tuple(float(v) for v in f["geometry"]["coordinates"][:2])
            for f in doc.get("features", [])]
  else:
    text, where = path.read_text(), spec
  points = []
  for n, line in enumerate(text.splitlines()):
    line = line.split("#")[0].strip()
    if not line:
      continue
    try:
      lon, lat = (float(v) for v in line.split(","))
    except ValueError as e:
      if n == 0 and where != "--points":
        continue   # a header such as "lon,lat"
      raise BadInputError(where, "points", f"expected 'lon,lat', got {line!r}") from e
    points.append((lon, lat))
  return points


def _in_bbox(item: dict[str, Any], point: tuple[float, float]) -> bool:
  bbox = item.get("bbox")
  if not bbox:
    return True
  n = len(bbox) // 2   # [minx, miny, maxx, maxy] or with z: [minx, miny, minz, maxx, ...]
  return bbox[0] <= point[0] <= bbox[n] and bbox[1] <= point[1] <= bbox[n + 1]


@dataclasses.dataclass(frozen=True)
class TileOptions:
  """How the tiles of every item are laid out, masked and read (see `stac_items`)."""
  patch_size: int
  stride: int
  points: tuple[tuple[float, float], ...] | None
  mask_classes: tuple[int, ...]
  max_masked: float
  resampling: str
  block_size: int
  harmonize: bool
  store_dtype: str | None


def _item_tiles(item, bands, opts: TileOptions) -> tuple[list[Item], collections.Counter]:
  """The unmasked tiles of one item as ingest Items, and the item's tile counts."""
  counts: collections.Counter = collections.Counter()
  hrefs = stac_assets.band_hrefs(item, bands)
  scl = stac_assets.scl_href(item) if opts.mask_classes else None
  grid_href = hrefs[grid_band(bands)]
  grid = item_grid(grid_href, opts.block_size)
  size = opts.patch_size
  if opts.points is not None:
    tiles, counts["points_outside"] = point_tiles(
        grid, [p for p in opts.points if _in_bbox(item, p)], size)
  else:
    tiles = grid_tiles(grid, size, opts.stride)
  provenance = item_provenance(item)
  items = []
  for row, col in dict.fromkeys(tiles):   # points in the same tile give it once
    counts["tiles"] += 1
    reason = masked_reason(grid_href, scl, grid.bounds(row, col, size),
                           mask_classes=opts.mask_classes, max_masked=opts.max_masked,
                           block_size=opts.block_size) if opts.mask_classes else None
    if reason is not None:
      counts[f"skipped_{reason}"] += 1
      continue
    items.append(Item(f"{provenance['item_id']}:{row}:{col}", functools.partial(
        load_tile, hrefs, grid, provenance, row, col, size, opts.resampling, opts.block_size,
        opts.harmonize, opts.store_dtype)))
  return items, counts


def stac_items(inputs: Sequence[str], *, bands: str | Sequence[str] | None = "spectralgpt",
               patch_size: int = 128, stride: int | None = None, points: str | None = None,
               search: dict[str, Any] | None = None, max_items: int | None = None,
               mask_classes: Sequence[int] = DEFAULT_MASK_CLASSES, max_masked: float = 0.0,
               resampling: str = "bicubic", block_size: int = stac_assets.DEFAULT_BLOCK_SIZE,
               skip_bad_items: bool = False, harmonize: bool = True,
               store_dtype: str | None = "uint16") -> tuple[list[Item], dict[str, Any]]:
  """Ingest items (one per unmasked tile) of the STAC items behind `inputs`, and counts:
  items, bad_items (one line each), tiles, skipped_nodata, skipped_cloud, points_outside.

  A bad item (a band no asset holds, an asset that cannot be opened) raises BadInputError
  naming the item and the href, or with `skip_bad_items` (ingest --skip_bad) is listed in
  counts["bad_items"] and adds nothing else to the counts.
  """
  wanted = schema.parse_band_list(bands or "spectralgpt")
  opts = TileOptions(
      patch_size=int(patch_size), stride=int(stride or patch_size),
      points=tuple(parse_points(points)) if points else None,
      mask_classes=tuple(int(k) for k in mask_classes), max_masked=float(max_masked),
      resampling=resampling, block_size=int(block_size), harmonize=harmonize,
      store_dtype=store_dtype)
  counts: dict[str, Any] = {"items": 0, "bad_items": [], "tiles": 0, "skipped_nodata": 0,
                            "skipped_cloud": 0, "points_outside": 0}
  items: list[Item] = []
  for href in inputs:
    for item in stac_catalog.load_items(href, search_body=search, max_items=max_items):
      counts["items"] += 1
      try:
        tiles, item_counts = _item_tiles(item, wanted, opts)
      except BadInputError as e:
        if not skip_bad_items:
          raise BadInputError(e.path, e.field, f"STAC item {item.get('id')}: {e.reason}") from e
        line = f"STAC item {item.get('id')} ({stac_catalog.self_href(item)}): {e}"
        logging.warning("skipping bad %s", line)
        counts["bad_items"].append(line)
        continue
      items.extend(tiles)
      for name, n in item_counts.items():
        counts[name] += n
  logging.info("STAC: %d items, %d tiles, %d kept (%d no-data, %d cloud skipped)",
               counts["items"], counts["tiles"], len(items), counts["skipped_nodata"],
               counts["skipped_cloud"])
  return items, counts
