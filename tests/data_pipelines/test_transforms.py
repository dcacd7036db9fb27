"""Normalization formulas, crop geometry, flips, resampling parity with torch.interpolate."""

import numpy as np
import pytest

from data_pipelines import normalization as N
from data_pipelines import resample, transforms as T


def _rng(seed=0):
  return np.random.default_rng(seed)


def test_minmax_per_image_per_band():
  x = _rng().normal(1000, 300, (2, 3, 8, 8)).astype(np.float32)   # [T, C, H, W]
  x[0, 1] = 5.0                                                   # constant plane
  y = N.minmax(x)
  np.testing.assert_allclose(y[1].min(axis=(1, 2)), 0, atol=1e-6)
  np.testing.assert_allclose(y[1].max(axis=(1, 2)), 1, atol=1e-6)
  np.testing.assert_array_equal(y[0, 1], 0.0)                    # eps keeps it finite


def test_zscore_and_sentinel_clip_formulas():
  x = _rng().uniform(0, 5000, (2, 4, 4)).astype(np.float32)
  mean, std = np.array([1000.0, 2000.0], np.float32), np.array([500.0, 800.0], np.float32)
  np.testing.assert_allclose(N.zscore(x, mean, std),
                             (x - mean[:, None, None]) / std[:, None, None], rtol=1e-6)
  lo, hi = mean - 2 * std, mean + 2 * std
  ref = np.clip((x - lo[:, None, None]) / (hi - lo)[:, None, None] * 255, 0, 255)
  np.testing.assert_allclose(N.sentinel_clip(x, mean, std, quantize=False), ref / 255, rtol=1e-5)
  np.testing.assert_allclose(N.sentinel_clip(x, mean, std), ref.astype(np.uint8) / 255.0,
                             rtol=1e-6)
  with pytest.raises(ValueError, match="needs mean and std"):
    T.Normalize("zscore")


def test_random_resized_crop_box_bounds():
  rng = _rng()
  for _ in range(500):
    top, left, h, w = T.random_resized_crop_box(rng, 120, 100, (0.2, 1.0), (3 / 4, 4 / 3))
    assert 0 <= top and top + h <= 120 and 0 <= left and left + w <= 100
    assert 0.19 * 12000 <= h * w <= 12000 * 1.01
    assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1
  # Impossible area: falls back to a central crop with the closest allowed ratio.
  assert T.random_resized_crop_box(rng, 100, 300, (2.0, 3.0), (3 / 4, 4 / 3)) == (0, 83, 100, 133)


def test_augment_same_geometry_for_cube_cube2_mask():
  h = w = 40
  grid = np.arange(h * w).reshape(h, w)
  el = {"cube": np.stack([grid, -grid]).astype(np.float32), "cube2": 2 * np.stack(
      [grid, -grid]).astype(np.float32), "mask": grid.astype(np.int32)}
  aug0 = T.RandomAugment(16, method="nearest", hflip_prob=0.0)
  aug1 = T.RandomAugment(16, method="nearest", hflip_prob=1.0, vflip_prob=1.0)
  a, b = aug0.random_map(el, _rng(3)), aug1.random_map(el, _rng(3))
  assert a["cube"].shape == (2, 16, 16) and a["mask"].shape == (16, 16)
  np.testing.assert_array_equal(a["cube"][0], a["mask"])
  np.testing.assert_array_equal(a["cube2"], 2 * a["cube"])
  np.testing.assert_array_equal(b["cube"], a["cube"][..., ::-1, ::-1])
  np.testing.assert_array_equal(b["mask"], a["mask"][::-1, ::-1])


def test_eval_resize_crop_matches_two_step():
  x = _rng().random((3, 64, 64)).astype(np.float32)
  out = T.EvalResizeCrop(128).map({"cube": x})["cube"]
  big = resample.resize(x, (146, 146), "bicubic")
  np.testing.assert_allclose(out, big[:, 9:137, 9:137], rtol=1e-5, atol=1e-6)


def test_resize_preserves_constants_and_keeps_mask_dtype():
  c = np.full((2, 30, 30), 3.5, np.float32)
  for m in ("bilinear", "bicubic"):
    for size in (17, 64):
      for aa in (True, False):
        np.testing.assert_allclose(resample.resize(c, (size, size), m, antialias=aa), 3.5,
                                   rtol=1e-5)
  mask = np.arange(900, dtype=np.uint8).reshape(30, 30)
  assert resample.resize(mask, (60, 60), "nearest").dtype == np.uint8


@pytest.mark.parametrize("size,antialias", [((32, 40), False), ((32, 40), True),
                                            ((10, 13), True), ((10, 13), False)])
@pytest.mark.parametrize("method", ["bicubic", "bilinear"])
def test_resize_matches_torch_interpolate(size, antialias, method):
  torch = pytest.importorskip("torch")
  x = _rng().random((3, 24, 30)).astype(np.float32)
  ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], size=size, mode=method,
                                        align_corners=False, antialias=antialias)[0].numpy()
  np.testing.assert_allclose(resample.resize(x, size, method, antialias=antialias), ref,
                             atol=2e-6)
