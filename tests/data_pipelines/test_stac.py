"""`ingest --source stac`: a static catalog, an ItemCollection, STAC-GeoParquet and a STAC
API search over COGs written from the shipped BigEarthNet patches, served by a threaded HTTP
server with Range support on 127.0.0.1. Records are checked against independent rasterio
reads of the local files."""

import datetime as dt
import json
import os
import pathlib
import struct

import numpy as np
import pytest
import range_server

from data_pipelines import example_codec, ingest, resample, schema, stac, stac_assets
from data_pipelines import stac_catalog, tfrecord
from data_pipelines.errors import BadInputError

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / \
    "bigearthnet_s2_example"
PATCHES = ("S2A_MSIL2A_20170613T101031_87_48", "S2B_MSIL2A_20170924T93020_69_24")
TILE = 60   # four tiles over each 120 x 120 patch
ES_KEYS = {b: names[0] for b, names in stac_assets.S2_ASSET_NAMES.items()}


def _write_cog(arr, profile, path):
  import rasterio  # pylint: disable=g-import-not-at-top
  with rasterio.open(path, "w", driver="COG", width=arr.shape[1], height=arr.shape[0], count=1,
                     dtype=arr.dtype, crs=profile["crs"], transform=profile["transform"],
                     blocksize=128, compress="deflate", overview_resampling="average") as dst:
    dst.write(arr[None])


def _band_profile(patch, band):
  import rasterio  # pylint: disable=g-import-not-at-top
  with rasterio.open(EXAMPLE / patch / f"{patch}_{band}.tif") as src:
    return src.read(1), {"crs": src.crs, "transform": src.transform, "bounds": src.bounds}


def _scl(patch_index):
  """SCL at 20 m: vegetation, with a cloud over tile (0, 0) of the first patch and no-data
  over tile (60, 60) of the second."""
  scl = np.full((60, 60), 4, np.uint8)
  if patch_index == 0:
    scl[5:12, 3:9] = 9
  else:
    scl[40:, 45:] = 0
  return scl


def _item(patch, index, root, base_url, style):
  """Writes the patch's COGs under root/items/<patch>/ and returns its item dict."""
  from rasterio import warp  # pylint: disable=g-import-not-at-top
  folder = root / "items" / patch
  folder.mkdir(parents=True)
  assets = {}
  for band in schema.BIGEARTHNET_BANDS:
    arr, prof = _band_profile(patch, band)
    _write_cog(arr, prof, folder / f"{band}.tif")
    key = ES_KEYS[band] if style == "earthsearch" else band
    name = key if style == "earthsearch" else band
    assets[key] = {"href": f"./{band}.tif", "type": "image/tiff; application=geotiff; "
                   "profile=cloud-optimized", "roles": ["data"],
                   "eo:bands": [{"name": name, "common_name": stac_assets.S2_COMMON_NAMES.get(
                       band, "rededge")}]}
    if style == "earthsearch":   # the JPEG 2000 copy Earth Search lists beside each COG
      assets[f"{key}-jp2"] = {**assets[key], "href": f"./{band}.jp2", "type": "image/jp2"}
    if band == "B05":
      prof20 = prof
  _write_cog(_scl(index), prof20, folder / "SCL.tif")
  assets["scl" if style == "earthsearch" else "SCL"] = {"href": "./SCL.tif",
                                                        "type": "image/tiff", "roles": ["data"]}
  ref = _band_profile(patch, "B02")[1]
  bbox = list(warp.transform_bounds(ref["crs"], "EPSG:4326", *ref["bounds"]))
  meta = json.loads(next((EXAMPLE / patch).glob("*labels_metadata.json")).read_text())
  item = {"type": "Feature", "stac_version": "1.0.0", "id": patch, "bbox": bbox,
          "geometry": {"type": "Polygon", "coordinates": [[
              [bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[3]],
              [bbox[0], bbox[1]]]]},
          "properties": {"datetime": meta["acquisition_date"].replace(" ", "T") + "Z",
                         "proj:epsg": ref["crs"].to_epsg(), "eo:cloud_cover": 1.0},
          "links": [], "assets": assets}
  (folder / "item.json").write_text(json.dumps(item))
  absolute = {k: {**a, "href": f"{base_url}/items/{patch}/{a['href'][2:]}"}
              for k, a in assets.items()}
  return {**item, "assets": absolute,
          "links": [{"rel": "self", "href": f"{base_url}/items/{patch}/item.json"}]}


def _wkb_polygon(ring):
  return struct.pack("<BII", 1, 3, 1) + struct.pack("<I", len(ring)) + b"".join(
      struct.pack("<dd", *p) for p in ring)


def _write_geoparquet(items, path):
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  rows = []
  for item in items:
    b = item["bbox"]
    when = dt.datetime.fromisoformat(item["properties"]["datetime"])   # a timestamp column
    rows.append({"type": "Feature", "stac_version": item["stac_version"], "id": item["id"],
                 "geometry": _wkb_polygon(item["geometry"]["coordinates"][0]),
                 "bbox": {"xmin": b[0], "ymin": b[1], "xmax": b[2], "ymax": b[3]},
                 "links": item["links"], "assets": item["assets"], **item["properties"],
                 "datetime": when})
  pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
  """root with catalog.json, items.json (ItemCollection), items.parquet; the server's URL."""
  root = tmp_path_factory.mktemp("stac")
  server = range_server.start(root)
  base = range_server.url(server)
  items = [_item(p, i, root, base, ("earthsearch", "planetary")[i])
           for i, p in enumerate(PATCHES)]
  (root / "catalog.json").write_text(json.dumps({
      "type": "Catalog", "id": "test", "stac_version": "1.0.0", "description": "patches",
      "links": [{"rel": "item", "href": f"./items/{p}/item.json"} for p in PATCHES]}))
  (root / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))
  _write_geoparquet(items, root / "items.parquet")

  def search(body):   # one item per page, the next page by a POST body token
    start = int(body.get("token", 0))
    page = {"type": "FeatureCollection", "features": items[start:start + 1], "links": []}
    if start + 1 < len(items):
      page["links"].append({"rel": "next", "method": "POST", "merge": True,
                            "href": f"{base}/search", "body": {"token": start + 1}})
    return page
  server.search = search
  yield root, base, server
  server.shutdown()
  stac_assets.cached_raster.cache_clear()


def _expected_tile(patch, band, row, col, size=TILE, method="bicubic"):
  """The band resampled whole onto the 120 x 120 grid, then cut (independent of windows)."""
  arr = _band_profile(patch, band)[0]
  full = resample.resize(arr, (120, 120), method) if arr.shape != (120, 120) else arr
  return full[row:row + size, col:col + size].astype(np.float32)


def _records(out):
  manifest = json.loads((out / "manifest.json").read_text())
  recs = [example_codec.decode_record(d) for s in manifest["shards"]
          for _, d in tfrecord.iter_records(out / s["file"])]
  return manifest, {r["key"]: r for r in recs}


def test_catalog_over_http_equals_independent_reads(served, tmp_path):
  root, base, _ = served
  manifest = ingest.ingest("stac", [f"{base}/catalog.json"], tmp_path / "out", num_shards=2,
                           patch_size=TILE, store_dtype="float32")
  counts = manifest["labels"]["stac"]
  assert (counts["items"], counts["tiles"]) == (2, 8)
  assert (counts["skipped_cloud"], counts["skipped_nodata"]) == (1, 1)
  manifest, recs = _records(tmp_path / "out")
  assert manifest["num_records"] == 6 and manifest["bands"] == list(schema.SPECTRALGPT_BANDS)
  assert f"{PATCHES[0]}:0:0" not in recs and f"{PATCHES[1]}:60:60" not in recs
  for key, rec in recs.items():
    patch, row, col = key.split(":")
    row, col = int(row), int(col)
    for i, band in enumerate(rec["bands"]):
      np.testing.assert_allclose(rec["cube"][i], _expected_tile(patch, band, row, col),
                                 rtol=1e-5, atol=1e-2, err_msg=f"{key} {band}")
    ref = _band_profile(patch, "B02")[1]
    left, top = ref["transform"] @ (col, row)
    assert rec["bounds"] == [left, top - 10 * TILE, left + 10 * TILE, top]
    assert rec["crs"] == f"EPSG:{ref['crs'].to_epsg()}" and rec["item_id"] == patch
    assert rec["source"] == f"{base}/items/{patch}/item.json"
    assert rec["date"] == json.loads((root / "items" / patch / "item.json").read_text())[
        "properties"]["datetime"]


def test_itemcollection_geoparquet_and_search_list_the_same_tiles(served):
  root, base, _ = served
  listed = {}
  for name, href, body in (("collection", str(root / "items.json"), None),
                           ("parquet", f"{base}/items.parquet", None),
                           ("search", f"{base}/search", {"collections": ["s2"]})):
    items, counts = stac.stac_items([href], patch_size=TILE, search=body)
    listed[name] = [i.key for i in items]
    assert counts["items"] == 2, name
  assert listed["collection"] == listed["parquet"] == listed["search"]
  items, _ = stac.stac_items([f"{base}/items.parquet"], bands="B02,B05", patch_size=TILE)
  rec = items[0].load()
  patch, row, col = rec["key"].split(":")
  assert rec["bands"] == ["B02", "B05"] and rec["cube"].dtype == np.uint16
  np.testing.assert_array_equal(rec["cube"][0], _expected_tile(patch, "B02", int(row), int(col)))


def test_band_hrefs_by_asset_key_and_eo_bands(served):
  root, _, _ = served
  es = stac_catalog.read_json(str(root / "items" / PATCHES[0] / "item.json"))
  pc = stac_catalog.read_json(str(root / "items" / PATCHES[1] / "item.json"))
  es["links"] = [{"rel": "self", "href": str(root / "items" / PATCHES[0] / "item.json")}]
  assert stac_assets.band_hrefs(es, ["B8A", "B05", "B02"]) == {
      b: str(root / "items" / PATCHES[0] / f"{b}.tif") for b in ("B8A", "B05", "B02")}
  assert stac_assets.band_hrefs(pc, ["B02"]) == {"B02": "B02.tif"}   # no self link: as given
  pystac = pytest.importorskip("pystac")
  assert stac_assets.band_hrefs(pystac.Item.from_dict(es), ["B8A"]) == {
      "B8A": str(root / "items" / PATCHES[0] / "B8A.tif")}
  with pytest.raises(BadInputError, match=f"{PATCHES[1]}.*B10"):
    stac_assets.band_hrefs(pc, ["B10"])


def test_windowed_read_fetches_only_needed_blocks(served):
  root, base, server = served
  mosaic = np.tile(_band_profile(PATCHES[0], "B02")[0], (8, 8))   # 960 x 960
  prof = _band_profile(PATCHES[0], "B02")[1]
  _write_cog(mosaic, prof, root / "mosaic.tif")
  size = os.path.getsize(root / "mosaic.tif")
  server.log.clear()
  ds = stac_assets.cached_raster(f"{base}/mosaic.tif", 1 << 14)
  left, top = ds.transform @ (400, 300)
  tile = stac.read_band_tile(f"{base}/mosaic.tif", (left, top - 640, left + 640, top), 64,
                             block_size=1 << 14)
  np.testing.assert_array_equal(tile, mosaic[300:364, 400:464])
  gets = [entry for entry in server.log if entry[0] == "GET"]
  assert gets and all(rng is not None for _, _, rng, _ in gets), gets
  assert sum(n for *_, n in gets) < size / 4, (sum(n for *_, n in gets), size)


def test_bad_items_named_in_one_line(served, tmp_path):
  root, base, _ = served
  good = json.loads((root / "items.json").read_text())["features"][0]
  missing = {**good, "id": "no-red", "assets": {k: a for k, a in good["assets"].items()
                                               if k != "red"}}
  gone = {**good, "id": "gone", "assets": {**good["assets"], "blue": {
      **good["assets"]["blue"], "href": "http://127.0.0.1:9/blue.tif"}}}
  path = tmp_path / "bad.json"
  path.write_text(json.dumps({"type": "FeatureCollection", "features": [good, missing, gone]}))
  with pytest.raises(BadInputError) as err:
    stac.stac_items([str(path)], patch_size=TILE)
  assert "no-red" in str(err.value) and "B04" in str(err.value) and "\n" not in str(err.value)
  items, counts = stac.stac_items([str(path)], patch_size=TILE, skip_bad_items=True)
  assert len(items) == 3 and len(counts["bad_items"]) == 2
  assert "no-red" in counts["bad_items"][0] and "B04" in counts["bad_items"][0]
  assert "gone" in counts["bad_items"][1] and "http://127.0.0.1:9/blue.tif" in \
      counts["bad_items"][1]


def test_points_pick_the_tile_around_each_location(served):
  from rasterio import warp  # pylint: disable=g-import-not-at-top
  root, _, _ = served
  ref = _band_profile(PATCHES[1], "B02")[1]
  x, y = ref["transform"] @ (70.5, 40.5)   # centre of pixel row 40, col 70
  (lon,), (lat,) = warp.transform(ref["crs"], "EPSG:4326", [x], [y])
  items, counts = stac.stac_items([str(root / "items.json")], patch_size=32,
                                  points=f"{lon},{lat};0,0", mask_classes=())
  assert [i.key for i in items] == [f"{PATCHES[1]}:24:54"]
  assert counts["points_outside"] == 0   # (0, 0) lies in no item's bbox
  rec = items[0].load()
  left, bottom, right, top = rec["bounds"]
  assert left < x < right and bottom < y < top
  for i, band in enumerate(rec["bands"]):   # 20 m / 60 m windows start mid-pixel here
    want = np.clip(np.rint(_expected_tile(PATCHES[1], band, 24, 54, 32)), 0, 65535)
    np.testing.assert_allclose(rec["cube"][i], want, atol=1, err_msg=band)   # stored uint16


def test_cli_flags_reach_the_source_and_a_bad_item_is_one_line(served, tmp_path, capsys):
  from spectralgpt_jax.cli import ingest as ingest_cli  # pylint: disable=g-import-not-at-top
  root, base, _ = served
  out = tmp_path / "cli"
  assert ingest_cli.main(["--source", "stac", "--input", f"{base}/items.parquet", "--out",
                          str(out), "--shards", "1", "--patch_size", str(TILE), "--bands",
                          "B02,B03,B04,B08", "--mask_classes", "9"]) == 0
  printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert printed["records"] == 7 and printed["bands"] == ["B02", "B03", "B04", "B08"]
  manifest, recs = _records(out)
  assert manifest["labels"]["stac"]["skipped_cloud"] == 1 and f"{PATCHES[1]}:60:60" in recs
  good = json.loads((root / "items.json").read_text())["features"][1]
  bad = {**good, "id": "no-blue", "assets": {k: a for k, a in good["assets"].items()
                                            if k != "B02"}}
  (tmp_path / "bad.json").write_text(json.dumps(bad))
  assert ingest_cli.main(["--source", "stac", "--input", str(tmp_path / "bad.json"), "--out",
                          str(tmp_path / "bad"), "--shards", "1"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "no-blue" in err[0] and "B02" in err[0], err
