"""`predict` on a synthetic GeoTIFF scene with a tiny random segmenter: the class map against
whole-image numpy blending of the model's own window scores, georeferencing, nodata, shares
of processes, resume, and the one-line refusals."""

import numpy as np
import pytest

from data_pipelines.errors import BadInputError
from predict_helpers import BANDS, random_model, synthetic_cube, write_scene
from spectralgpt_jax.predict import model_fn, run as R, windows as W

rasterio = pytest.importorskip("rasterio")

SIZE, STRIDE = 32, 16


@pytest.fixture(scope="module")
def seg():
  return random_model("seg_vit_tiny_patch8_32", std=0.2)


@pytest.fixture(scope="module")
def scene_path(tmp_path_factory):
  cube = synthetic_cube(57, 70, seed=3)
  cube[:, 40:47, 5:30] = 0   # nodata
  return write_scene(tmp_path_factory.mktemp("scene") / "scene.tif", cube, nodata=0), cube


def _expected(model, cube):
  """Whole-image cosine-blended probabilities of the model's softmax on each window (normalized
  here from the weights' z-score record), and validity."""
  x = cube.astype(np.float32)
  valid = (cube != 0).all(0)
  x = np.where(valid, (x - 1500.0) / 500.0, 0).astype(np.float32)
  h, w = valid.shape
  wts = W.blend_weights(SIZE, "cosine")
  total, wsum = np.zeros((2, h, w)), np.zeros((h, w))
  call = model_fn.model_fn(model)   # the model call itself (compiled once, batch of 8)
  corners = W.tile_grid(h, w, SIZE, STRIDE)
  for i in range(0, len(corners), 8):
    chunk = list(corners[i:i + 8])
    crops = np.stack([x[:, y:y + SIZE, xx:xx + SIZE] for y, xx in chunk + chunk[-1:] * 8][:8])
    for (y, xx), p in zip(chunk, np.asarray(call(crops))):
      total[:, y:y + SIZE, xx:xx + SIZE] += p * wts
      wsum[y:y + SIZE, xx:xx + SIZE] += wts
  return total / wsum, valid


def _read(path):
  with rasterio.open(path) as f:
    return f.read(), f.profile, f.crs, f.transform


def test_class_map_georeferencing_nodata_and_probabilities(seg, scene_path, tmp_path):
  path, cube = scene_path
  out = tmp_path / "classes.tif"
  report = R.predict(seg, [str(path)], str(out), stride=STRIDE, probabilities=True,
                     compute_dtype="float32", progress=False)
  probs, valid = _expected(seg, cube)
  classes, profile, crs, transform = _read(out)
  with rasterio.open(path) as src:
    assert (crs, transform, (src.height, src.width)) == (src.crs, src.transform,
                                                         classes.shape[1:])
  assert profile["nodata"] == 255 and profile["tiled"] and profile["compress"] == "deflate"
  assert (classes[0][~valid] == 255).all()
  decided = valid & (np.abs(probs[1] - probs[0]) > 1e-4)
  assert 0 < probs.argmax(0)[valid].mean() < 1   # both classes occur
  np.testing.assert_array_equal(classes[0][decided], probs.argmax(0)[decided])
  p, _, _, _ = _read(tmp_path / "classes_probabilities.tif")
  np.testing.assert_allclose(p[:, valid], probs[:, valid], atol=1e-4)
  assert np.isnan(p[:, ~valid]).all()
  assert report["windows"] == len(W.tile_grid(57, 70, SIZE, STRIDE))
  assert not (tmp_path / "classes.tif.partial").exists()
  with pytest.raises(FileExistsError):
    R.predict(seg, [str(path)], str(out), stride=STRIDE, progress=False)


def test_shares_of_processes_and_resume_give_the_same_map(seg, scene_path, tmp_path):
  path, _ = scene_path
  kw = dict(stride=STRIDE, compute_dtype="float32", progress=False)
  R.predict(seg, [str(path)], str(tmp_path / "one.tif"), **kw)
  out = tmp_path / "two.tif"
  # Process 0 of 2 alone: its rows are kept, nothing looks complete.
  with pytest.raises(TimeoutError, match="never came"):
    R.predict(seg, [str(path)], str(out), process_index=0, process_count=2, wait_s=0, **kw)
  assert not out.exists() and (tmp_path / "two.tif.partial").is_dir()
  # Process 1 of 2 writes its share; a plain rerun then redoes nothing.
  R.predict(seg, [str(path)], str(out), process_index=1, process_count=2, **kw)
  report = R.predict(seg, [str(path)], str(out), **kw)
  assert report["windows"] == 0
  np.testing.assert_array_equal(_read(out)[0], _read(tmp_path / "one.tif")[0])


def test_refusals(seg, scene_path, tmp_path):
  path, cube = scene_path
  with pytest.raises(ValueError, match="give one scene"):
    R.predict(seg, [str(path), str(path)], str(tmp_path / "x.tif"), progress=False)
  with pytest.raises(ValueError, match="kind 'seg', not 'change'"):
    R.predict(seg, [str(path)], str(tmp_path / "x.tif"), expect_kind="change", progress=False)
  short = write_scene(tmp_path / "short.tif", cube[:11], bands=BANDS[:11])
  with pytest.raises(BadInputError, match=r"short.tif: \[B12\] scene lacks band\(s\) \['B12'\]"):
    R.predict(seg, [str(short)], str(tmp_path / "x.tif"), progress=False)
  assert not list(tmp_path.glob("x.tif*"))
