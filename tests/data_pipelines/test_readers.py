"""Public readers (data_pipelines.readers): band names under "bands", the old key and the old
function name still answer for one release, with a DeprecationWarning."""

import json

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from rasterio import Affine  # noqa: E402

from data_pipelines import bigearthnet, readers, schema  # noqa: E402
from spectralgpt_jax import inference  # noqa: E402


def test_bigearthnet_patch_bands_key_and_deprecated_names(example_dir):
  folder = readers.list_bigearthnet_patches(example_dir)[0]
  cube, meta = readers.read_bigearthnet_patch(folder)
  assert cube.shape == (12, 120, 120) and meta["bands"] == list(schema.SPECTRALGPT_BANDS)
  assert "band_names" not in meta and json.loads(json.dumps(meta))["bands"] == meta["bands"]
  with pytest.warns(DeprecationWarning, match="'band_names' is deprecated.*use 'bands'"):
    assert meta["band_names"] == meta["bands"]
  with pytest.warns(DeprecationWarning, match="'band_names' is deprecated"):
    assert meta.get("band_names") == meta["bands"]
  with pytest.warns(DeprecationWarning, match="use read_bigearthnet_patch"):
    old_cube, old_meta = bigearthnet.load_bigearthnet_patch(folder)
  np.testing.assert_array_equal(old_cube, cube)
  assert old_meta["bands"] == meta["bands"]
  assert inference.read_bigearthnet_patch is readers.read_bigearthnet_patch


def test_geotiff_bands_from_descriptions_or_argument(tmp_path):
  path = tmp_path / "tile.tif"
  cube = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
  with rasterio.open(path, "w", driver="GTiff", width=5, height=4, count=3, dtype="uint16",
                     crs="EPSG:32633", transform=Affine(10, 0, 5e5, 0, -10, 5e6)) as dst:
    dst.write(cube)
    dst.descriptions = ("B04", "B03", "B02")
  got, meta = readers.read_geotiff(path)
  np.testing.assert_array_equal(got, cube)
  assert meta["bands"] == ["B04", "B03", "B02"] and meta["crs"] == "EPSG:32633"
  _, meta = inference.read_geotiff(path, "B8,B11,B12")
  assert meta["bands"] == ["B08", "B11", "B12"]
  with pytest.raises(readers.BadInputError, match=r"tile.tif: \[bands\] file has 3 planes"):
    readers.read_geotiff(path, ["B02", "B03"])
