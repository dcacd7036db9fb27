"""`predict --input ITEM.json`: a STAC item whose assets are COGs written from a shipped
BigEarthNet patch (10, 20 and 60 m bands) reads and predicts as that patch's band folder; the
item and a multi-band file read from an HTTP server (byte ranges) as from disk."""

import json
import pathlib

import numpy as np
import pytest
import range_server

from data_pipelines import schema, stac_assets, storage
from data_pipelines.errors import BadInputError
from predict_helpers import BANDS, random_model, synthetic_cube, write_scene
from spectralgpt_jax.predict import prepare, run as R, scene

rasterio = pytest.importorskip("rasterio")

PATCH = (pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data" /
         "bigearthnet_s2_example" / "S2A_MSIL2A_20170613T101031_87_48")


def _write_item(root: pathlib.Path, drop: tuple[str, ...] = ()) -> pathlib.Path:
  """COG copies of the patch's band files under root/ and an item.json with relative hrefs
  (asset keys and eo:bands names as Planetary Computer spells them)."""
  root.mkdir(parents=True)
  assets = {}
  for band in schema.BIGEARTHNET_BANDS:
    if band in drop:
      continue
    with rasterio.open(PATCH / f"{PATCH.name}_{band}.tif") as src:
      arr, crs, transform = src.read(1), src.crs, src.transform
    with rasterio.open(root / f"{band}.tif", "w", driver="COG", width=arr.shape[1],
                       height=arr.shape[0], count=1, dtype=arr.dtype, crs=crs,
                       transform=transform, blocksize=128, compress="deflate") as dst:
      dst.write(arr[None])
    assets[band] = {"href": f"./{band}.tif", "roles": ["data"],
                    "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                    "eo:bands": [{"name": band}]}
  item = {"type": "Feature", "stac_version": "1.0.0", "id": PATCH.name, "bbox": [0, 0, 1, 1],
          "geometry": None, "properties": {"datetime": "2017-06-13T10:10:31Z"}, "links": [],
          "assets": assets}
  path = root / "item.json"
  path.write_text(json.dumps(item))
  return path


@pytest.fixture(scope="module")
def item(tmp_path_factory):
  return _write_item(tmp_path_factory.mktemp("stac") / "item")


def test_item_reads_as_the_band_folder(item):
  from_item, from_folder = scene.open_scene(item), scene.open_scene(PATCH)
  assert from_item.grid == from_folder.grid
  x, v = from_item.read_rows(0, 120, BANDS)
  y, w = from_folder.read_rows(0, 120, BANDS)
  np.testing.assert_array_equal(x, y)   # 20 / 60 m bands upsampled alike
  np.testing.assert_array_equal(v, w)


@pytest.mark.slow
def test_item_predicts_as_the_band_folder(item, tmp_path):
  model = random_model("seg_vit_tiny_patch8_32", std=0.2)
  kw = dict(batch_size=8, progress=False, probabilities=True)
  url = f"memory://predict-{tmp_path.name}/out/item.tif"   # --out as a URL (fsspec memory)
  report = R.predict(model, [str(item)], url, **kw)
  assert sorted(report["files"]) == sorted(
      f"memory://predict-{tmp_path.name}/out/{n}"
      for n in ("item.tif", "item.tif.json", "item_probabilities.tif"))
  for f in report["files"]:
    (tmp_path / storage.basename(f)).write_bytes(storage.read_bytes(f))
  with pytest.raises(FileExistsError, match="item.tif exists"):
    R.predict(model, [str(item)], url, **kw)
  R.predict(model, [str(PATCH)], str(tmp_path / "folder.tif"), **kw)
  for name in ("item.tif", "item_probabilities.tif"):
    with rasterio.open(tmp_path / name) as a, \
         rasterio.open(tmp_path / name.replace("item", "folder")) as b:
      assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
      np.testing.assert_array_equal(a.read(), b.read())


def test_an_item_without_a_model_band_is_named(tmp_path):
  short = scene.open_scene(_write_item(tmp_path / "short", drop=("B01", "B09")))
  with pytest.raises(BadInputError, match=r"lacks band\(s\) \['B01', 'B09'\]"):
    prepare.check_bands(short, BANDS)
  with pytest.raises(BadInputError, match="not found"):
    scene.open_scene(str(tmp_path / "missing.json"))


def test_item_and_scene_urls_read_as_local_files(item, tmp_path):
  root = item.parent.parent
  cube = synthetic_cube(40, 50)
  write_scene(root / "scene.tif", cube)
  with range_server.serving(root) as base:
    x, v = scene.open_scene(f"{base}/item/item.json").read_rows(30, 90, BANDS)
    y, w = scene.open_scene(PATCH).read_rows(30, 90, BANDS)
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(v, w)
    z, _ = scene.open_scene(f"{base}/scene.tif").read_rows(10, 30, ["B04", "B02"])
    np.testing.assert_array_equal(z, cube[[3, 1], 10:30].astype(np.float32))
    with pytest.raises(BadInputError, match="missing.tif"):
      scene.open_scene(f"{base}/missing.tif")
    stac_assets.cached_raster.cache_clear()
