"""Saved dense predictions and panels, read back from disk: sizes, values, georeferencing,
colours and the panel's shape."""

import numpy as np
import pytest

from spectralgpt_jax.evaluation import dense_outputs as O
from spectralgpt_jax.evaluation.context import EvalContext

rasterio = pytest.importorskip("rasterio")
Image = pytest.importorskip("PIL.Image")

BANDS = ("B02", "B03", "B04", "B08")   # RGB = channels 2, 1, 0


def _ctx(tmp_path):
  return EvalContext(workdir=str(tmp_path), seed=0, pretrained="", model="", cache_dir="")


def _png(path):
  return np.asarray(Image.open(path).convert("RGB"))


def test_prediction_files_read_back(tmp_path):
  rng = np.random.default_rng(0)
  scores = rng.normal(size=(3, 37, 52)).astype(np.float32)
  valid = np.ones((37, 52), bool)
  valid[0, :4] = False
  transform = (10.0, 0.0, 600000.0, 0.0, -10.0, 5000000.0)
  paths = O.write_prediction(_ctx(tmp_path), "paris/2018", scores, valid=valid,
                             crs="EPSG:32631", transform=transform)
  assert paths["geotiff"] == str(tmp_path / "predictions" / "paris_2018.tif")
  expected = scores.argmax(0)
  with rasterio.open(paths["geotiff"]) as src:
    assert (src.count, src.height, src.width, src.dtypes[0]) == (1, 37, 52, "uint8")
    assert src.crs.to_epsg() == 32631 and tuple(src.transform)[:6] == transform
    assert src.nodata == 255
    band = src.read(1)
  np.testing.assert_array_equal(band[valid], expected[valid])
  assert (band[~valid] == 255).all()
  png = _png(paths["png"])
  assert png.shape == (37, 52, 3)
  colours = O.class_colours(3)
  np.testing.assert_array_equal(png[5, 7], colours[expected[5, 7]])
  np.testing.assert_array_equal(png[0, 0], O.GREY)
  with np.load(paths["scores"]) as z:
    np.testing.assert_array_equal(z["scores"], scores)
    np.testing.assert_array_equal(z["class_map"][valid], expected[valid])


def test_geotiff_without_georeferencing_and_from_bounds(tmp_path):
  class_map = np.array([[0, 1], [1, 0]], np.uint8)
  with (rasterio.MemoryFile(O.geotiff_bytes(class_map)) as mem,
        pytest.warns(rasterio.errors.NotGeoreferencedWarning), mem.open() as src):
    assert src.crs is None and src.read(1).tolist() == [[0, 1], [1, 0]]
  data = O.geotiff_bytes(class_map, crs="EPSG:32633", bounds=(0, 0, 20, 20))
  with rasterio.MemoryFile(data) as mem, mem.open() as src:
    assert src.transform.a == 10 and src.bounds == (0, 0, 20, 20)


def test_files_beside_the_metrics_and_keys_as_file_names(tmp_path):
  paths = O.write_prediction(_ctx(tmp_path), "../rennes", np.zeros((2, 3, 3)), folder="")
  assert paths["png"] == str(tmp_path / "_rennes.png") and (tmp_path / "_rennes.tif").is_file()
  with pytest.raises(ValueError, match="inside the evaluator's workdir"):
    O.write_prediction(_ctx(tmp_path), "rennes", np.zeros((2, 3, 3)), folder="/tmp")


def test_bad_prediction_inputs_name_the_image(tmp_path):
  with pytest.raises(ValueError, match="'rennes'.*\\[K, H, W\\]"):
    O.write_prediction(_ctx(tmp_path), "rennes", np.zeros((4, 4)))
  with pytest.raises(ValueError, match="valid mask of 'rennes'"):
    O.write_prediction(_ctx(tmp_path), "rennes", np.zeros((2, 4, 4)), valid=np.ones((3, 4)))


def test_error_colours_binary_and_multiclass():
  truth = np.array([[0, 1, 0, 1, -1]])
  pred = np.array([[0, 1, 1, 0, 1]])
  np.testing.assert_array_equal(O.error_colours(truth, pred, 2)[0],
                                [O.TN, O.TP, O.FP, O.FN, O.GREY])
  multi = O.error_colours(np.array([[2, 0, -1]]), np.array([[2, 1, 0]]), 3)
  np.testing.assert_array_equal(multi[0], [O.TP, O.FP, O.GREY])


def test_rgb_composite_stretches_each_channel():
  rng = np.random.default_rng(1)
  cube = rng.uniform(0, 3000, size=(4, 50, 50))
  rgb = O.rgb_composite(cube, BANDS)
  assert rgb.shape == (50, 50, 3) and rgb.dtype == np.uint8
  for i, band in enumerate((2, 1, 0)):   # B04, B03, B02
    lo, hi = np.percentile(cube[band], (2, 98))
    expected = np.round(255 * np.clip((cube[band] - lo) / (hi - lo), 0, 1))
    np.testing.assert_array_equal(rgb[..., i], expected)


def test_panel_shape_title_band_and_error_tile(tmp_path):
  rng = np.random.default_rng(2)
  h, w = 64, 96
  dates = [rng.uniform(0, 1, size=(4, h, w)) for _ in range(2)]
  truth = np.zeros((h, w), np.int64)
  truth[32:, 48:] = 1                    # bottom-right quadrant changed
  pred = np.zeros_like(truth)
  pred[:32, :48] = 1                     # top-left predicted changed: FP there, FN bottom-right
  truth[:, -4:] = -1
  path = O.write_panel(_ctx(tmp_path), "hongkong", dates, BANDS, truth, pred, num_classes=2)
  assert path == str(tmp_path / "panels" / "hongkong.png")
  panel = _png(path)
  lay = O.panel_layout(h, w, 5)          # 2 dates + truth, prediction, errors
  assert panel.shape == (lay["height"], lay["width"], 3)
  assert lay["tile_w"] == O.PANEL_TILE and lay["tile_h"] == round(O.PANEL_TILE * h / w)
  top = lay["height"] - O.PANEL_GAP - lay["tile_h"]          # first row of the pictures
  x0 = O.PANEL_GAP + 4 * (lay["tile_w"] + O.PANEL_GAP)      # the errors tile
  errors = panel[top:top + lay["tile_h"], x0:x0 + lay["tile_w"]]
  th, tw = lay["tile_h"], lay["tile_w"]
  np.testing.assert_array_equal(errors[th // 4, tw // 4], O.FP)
  np.testing.assert_array_equal(errors[3 * th // 4, 3 * tw // 4 - 10], O.FN)
  np.testing.assert_array_equal(errors[3 * th // 4, tw // 4], O.TN)
  np.testing.assert_array_equal(errors[th // 2, tw - 2], O.GREY)
  truth_tile = panel[top:top + th, x0 - 2 * (tw + O.PANEL_GAP):][:, :tw]
  np.testing.assert_array_equal(truth_tile[3 * th // 4, 3 * tw // 4 - 10], O.TP)
  title_band = panel[:top]
  assert (title_band < 100).any()        # the titles are drawn (dark text on white)
  with pytest.raises(ValueError, match="prediction of panel"):
    O.panel_png(dates, BANDS, truth, pred[:10], num_classes=2)
