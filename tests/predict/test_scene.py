"""Scene readers: band folders by rows equal OSCD's whole-city reader; nodata, band names,
grids of a second date (numpy + rasterio)."""

import numpy as np
import pytest

from data_pipelines import oscd
from data_pipelines.errors import BadInputError
from predict_helpers import BANDS, synthetic_cube, write_scene
from spectralgpt_jax.predict import prepare, scene

rasterio = pytest.importorskip("rasterio")


def test_band_folder_rows_equal_the_whole_city_upsampled(oscd_root):
  """20 / 60 m bands upsampled per band of rows (with a margin) == the whole band upsampled
  (oscd.read_date), also for hongkong's second date on a 2 px smaller grid."""
  city = oscd.images_dir(oscd_root) / "hongkong"
  first = scene.open_scene(city / "imgs_1")
  second = scene.open_scene(city / "imgs_2")
  assert scene.align(first, second) == "pixel"
  grid = (first.grid.height, first.grid.width)
  for s, folder in ((first, "imgs_1"), (second, "imgs_2")):
    whole = oscd.read_date(city / folder, grid, BANDS)
    rows = [s.read_rows(r0, min(r0 + 100, grid[0]), BANDS) for r0 in range(0, grid[0], 100)]
    np.testing.assert_array_equal(np.concatenate([r[0] for r in rows], axis=1), whole)
    assert all(r[1].all() for r in rows)


def test_nodata_missing_bands_and_grids(tmp_path):
  cube = synthetic_cube(40, 50)
  cube[:, 5:9, 10:20] = 0
  a = scene.open_scene(write_scene(tmp_path / "a.tif", cube, nodata=0))
  x, valid = a.read_rows(0, 40, ["B04", "B02"])
  np.testing.assert_array_equal(x, cube[[3, 1]].astype(np.float32))
  assert not valid[5:9, 10:20].any() and valid.sum() == 40 * 50 - 40
  short = write_scene(tmp_path / "short.tif", cube[:10], bands=BANDS[:10])
  with pytest.raises(BadInputError, match=r"lacks band\(s\) \['B11', 'B12'\]"):
    prepare.check_bands(scene.open_scene(short), BANDS)
  # A second date moved by 3 pixels: refused with "exact", reprojected with "auto".
  moved = write_scene(tmp_path / "moved.tif", cube, origin=(500030.0, 4799970.0))
  with pytest.raises(BadInputError, match="differs from the first scene"):
    scene.align(a, scene.open_scene(moved), "exact")
  b = scene.open_scene(moved)
  assert scene.align(a, b) == "reproject"
  y, v = b.read_rows(0, 40, BANDS)
  np.testing.assert_array_equal(y[:, 3:, 3:], cube[:, :-3, :-3].astype(np.float32))
  assert not v[:3].any() and not v[:, :3].any()
  other_crs = write_scene(tmp_path / "utm32.tif", cube, crs="EPSG:32632")
  with pytest.raises(BadInputError, match="CRS EPSG:32632"):
    scene.align(a, scene.open_scene(other_crs), "exact")


def test_an_unreadable_window_names_the_file_and_the_window(tmp_path):
  path = write_scene(tmp_path / "bad.tif", synthetic_cube(600, 300), tiled=True)
  with rasterio.open(path) as f:
    offset = int(f.get_tag_item("BLOCK_OFFSET_0_1", "TIFF", bidx=1))
  data = bytearray(path.read_bytes())
  data[offset:offset + 400] = b"\xff" * 400   # the block of rows 256:512, first column of tiles
  path.write_bytes(bytes(data))
  s = scene.open_scene(path)
  s.read_rows(0, 256, BANDS)
  with pytest.raises(BadInputError, match=r"bad.tif: \[window rows 256:512 cols 0:300\]"):
    s.read_rows(256, 512, BANDS)
