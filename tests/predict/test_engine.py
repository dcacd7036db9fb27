"""The whole-scene engine against whole-image numpy: blends, row bands, shares (numpy only)."""

import numpy as np
import pytest

from spectralgpt_jax.evaluation import tiling
from spectralgpt_jax.predict import engine, sources, windows as W


def _brute(fn, image, size, stride, blend):
  """Whole-image weighted mean of every window's scores, computed in one array."""
  c, h, w = image.shape
  wts = W.blend_weights(size, blend).astype(np.float64)
  total, wsum = None, np.zeros((h, w))
  for y, x in W.tile_grid(h, w, size, stride):
    s = np.asarray(fn(image[None, :, y:y + size, x:x + size]))[0].astype(np.float64)
    total = np.zeros((s.shape[0], h, w)) if total is None else total
    total[:, y:y + size, x:x + size] += s * wts
    wsum[y:y + size, x:x + size] += wts
  return total / wsum


def _fn(x):
  """Scores that depend on the whole window (its mean) and on each pixel."""
  return np.concatenate([x[:, :1] + x.mean(axis=(1, 2, 3), keepdims=True), x[:, 1:2] ** 2], 1)


@pytest.mark.parametrize("blend", W.BLENDS)
def test_blends_equal_the_whole_image_weighted_mean(blend):
  image = np.random.default_rng(0).random((2, 45, 61)).astype(np.float32)
  out = tiling.predict_tiled(_fn, image, size=16, stride=6, batch_size=5, blend=blend)
  np.testing.assert_allclose(out, _brute(_fn, image, 16, 6, blend), rtol=1e-5, atol=1e-6)


def test_cosine_blend_keeps_a_window_independent_field_and_weighs_borders_least():
  image = np.random.default_rng(1).random((3, 40, 33)).astype(np.float32)
  out = tiling.predict_tiled(lambda x: x, image, size=16, stride=5, batch_size=4,
                             blend="cosine")
  np.testing.assert_allclose(out, image, rtol=1e-6)
  wts = W.blend_weights(16, "cosine")
  assert wts[8, 8] > 0.9 and wts[0, 0] < 0.01 and wts.min() > 0 and np.allclose(wts, wts.T)


def test_a_share_of_bands_with_its_warmup_gives_the_rows_of_the_whole_run():
  image = np.random.default_rng(2).random((2, 70, 30)).astype(np.float32)
  plan = W.RowPlan(70, 30, 16, 5)
  wts = W.blend_weights(16, "cosine")
  src = sources.ArraySource(image, 16)
  whole, part = {}, {}
  engine.run_bands(src, _fn, plan, wts, range(plan.num_bands),
                   lambda r0, r1, s, v: whole.update({r0: s}), batch_size=7)
  assert sorted(whole) == [plan.rows_of(k)[0] for k in range(plan.num_bands)]
  assert sum(s.shape[1] for s in whole.values()) == 70   # every row once
  start = plan.num_bands // 2
  assert plan.warmup(start) < start
  engine.run_bands(src, _fn, plan, wts, range(start, plan.num_bands),
                   lambda r0, r1, s, v: part.update({r0: s}), batch_size=3)
  assert sorted(part) == sorted(whole)[start:]
  for r0, s in part.items():
    np.testing.assert_allclose(s, whole[r0], rtol=1e-6)


def test_shares_split_every_band_once():
  shares = W.split_bands(11, 3)
  assert [list(s) for s in shares] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10]]
  assert engine.contiguous_runs([3, 4, 5, 9, 10]) == [range(3, 6), range(9, 11)]
