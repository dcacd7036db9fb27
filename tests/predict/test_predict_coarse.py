"""`predict` with a classifier and the MAE encoder (slow: two more compiled models): coarse
rasters on the scene's grid scaled by the cell, embeddings equal `SpectralGPT.embed` /
`features` of the same window, cells over nodata left empty, the classifier's CSV."""

import csv

import numpy as np
import pytest

from predict_helpers import random_model, synthetic_cube, write_scene
from spectralgpt_jax.predict import run as R

rasterio = pytest.importorskip("rasterio")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
  cube = synthetic_cube(70, 50, seed=1)
  cube[:, :3, :3] = 0   # nodata in the first cell
  return write_scene(tmp_path_factory.mktemp("coarse") / "s.tif", cube, nodata=0), cube


def _read(path):
  with rasterio.open(path) as f:
    return f.read(), f.transform


def test_mae_embeddings_per_window_and_per_token_cell(scene, tmp_path):
  path, cube = scene
  model = random_model("mae_vit_tiny_patch8_32")
  R.predict(model, [str(path)], str(tmp_path / "tile.tif"), progress=False)
  tile, t = _read(tmp_path / "tile.tif")
  assert tile.shape == (64, 3, 2) and (t.a, t.e, t.c, t.f) == (320.0, -320.0, 500000.0, 4800000.0)
  assert np.isnan(tile[:, 0, 0]).all() and not np.isnan(tile[:, 1:]).any()
  np.testing.assert_allclose(tile[:, 1, 0], model.embed(cube[:, 32:64, 0:32])[0], atol=1e-5)
  R.predict(model, [str(path)], str(tmp_path / "token.tif"), embedding="token", progress=False)
  token, t = _read(tmp_path / "token.tif")
  assert token.shape == (64, 12, 8) and t.a == 80.0
  feats = model.features(cube[:, 32:64, 0:32])[0]          # [groups * 4 * 4, D]
  cells = feats.reshape(-1, 4, 4, 64).mean(0)              # over the spectral groups
  np.testing.assert_allclose(token[:, 4:8, 0:4], np.moveaxis(cells, -1, 0), atol=1e-5)
  assert np.isnan(token[:, 0, 0]).all() and not np.isnan(token[:, 0, 1]).any()


def test_classifier_scores_raster_and_table(scene, tmp_path):
  path, cube = scene
  model = random_model("vit_tiny_patch8_32", std=0.3)
  R.predict(model, [str(path)], str(tmp_path / "cls.tif"), progress=False)
  scores, _ = _read(tmp_path / "cls.tif")
  k = model.spec.num_classes
  assert scores.shape == (k, 3, 2)
  x = (cube[:, 32:64, 0:32].astype(np.float32) - 1500) / 500
  logits = np.asarray(model.model.apply({"params": model.params}, x[None], train=False))[0]
  np.testing.assert_allclose(scores[:, 1, 0], np.exp(logits) / np.exp(logits).sum(), atol=1e-5)
  rows = list(csv.DictReader(open(tmp_path / "cls.csv")))
  assert len(rows) == 5   # 6 cells, the nodata one left out
  r = next(r for r in rows if (r["row"], r["col"]) == ("1", "0"))
  assert float(r["x"]) == 500160.0 and float(r["y"]) == 4800000.0 - 480.0
  assert r["top_class"] == f"class_{int(scores[:, 1, 0].argmax())}"
