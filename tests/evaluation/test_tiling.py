"""Tiling: covering grids, exact averaging of overlapping tiles, padding of small images, and
the official OSCD test tiles counted as the official loader does."""

import math

import numpy as np
import pytest

from spectralgpt_jax.evaluation import tiling as T


def _reference_starts(length, size, stride):
  """Brute force: every multiple of stride that fits, plus the tile flush with the end."""
  if length <= size:
    return [0]
  return sorted(set(range(0, length - size + 1, stride)) | {length - size})


@pytest.mark.parametrize("h,w,size,stride", [(10, 7, 4, 3), (128, 128, 128, 64),
                                             (395, 360, 128, 96), (130, 129, 32, 32),
                                             (5, 40, 8, 1)])
def test_grid_covers_every_pixel_and_stays_inside(h, w, size, stride):
  corners = T.tile_grid(h, w, size, stride)
  cov = T.coverage(h, w, corners, size)
  assert cov.min() >= 1
  expected = [(y, x) for y in _reference_starts(h, size, stride)
              for x in _reference_starts(w, size, stride)]
  assert [tuple(c) for c in corners] == expected
  if h >= size and w >= size:
    assert corners[:, 0].max() == h - size and corners[:, 1].max() == w - size


def test_grid_rejects_gaps():
  with pytest.raises(ValueError, match="uncovered"):
    T.tile_starts(100, 16, 17)


def _channels(k):
  """predict = the first k input channels (an identity the tiles must give back exactly)."""
  return lambda x: x[:, :k]


def test_identity_is_given_back_through_overlapping_tiles():
  rng = np.random.default_rng(0)
  image = rng.normal(size=(4, 45, 61)).astype(np.float32)
  out = T.predict_tiled(_channels(3), image, size=16, stride=10, batch_size=5)
  assert out.shape == (3, 45, 61) and out.dtype == np.float32
  np.testing.assert_allclose(out, image[:3], rtol=1e-6, atol=1e-6)


def test_overlaps_are_averaged_exactly():
  """Each tile predicts its own mean everywhere: a pixel gets the mean of its tiles' means."""
  rng = np.random.default_rng(1)
  image = rng.uniform(size=(1, 23, 30))
  size, stride = 8, 5

  def tile_mean(x):
    return np.broadcast_to(x.mean(axis=(1, 2, 3))[:, None, None, None], (x.shape[0], 1, size, size))

  out = T.predict_tiled(tile_mean, image, size=size, stride=stride, batch_size=4)
  total, count = np.zeros((23, 30)), np.zeros((23, 30))
  for y in _reference_starts(23, size, stride):
    for x in _reference_starts(30, size, stride):
      total[y:y + size, x:x + size] += image[0, y:y + size, x:x + size].mean()
      count[y:y + size, x:x + size] += 1
  np.testing.assert_allclose(out[0], total / count, rtol=1e-6)


def test_two_dates_reach_the_function_as_two_arrays():
  rng = np.random.default_rng(2)
  d1, d2 = rng.normal(size=(2, 3, 40, 33))
  out = T.predict_tiled(lambda a, b: np.concatenate([a[:, :1], b[:, 2:3]], 1), (d1, d2),
                        size=16, stride=12, batch_size=3)
  np.testing.assert_allclose(out, np.stack([d1[0], d2[2]]), rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match="date 1"):
    T.predict_tiled(lambda a, b: a, (d1, d2[:, :30]), size=16, stride=12, batch_size=3)


@pytest.mark.parametrize("mode", T.PAD_MODES)
def test_small_image_is_padded_and_cropped_back(mode):
  rng = np.random.default_rng(3)
  image = rng.normal(size=(2, 5, 70))
  seen = []

  def fn(x):
    seen.append(x.copy())
    return x
  out = T.predict_tiled(fn, image, size=16, stride=16, batch_size=8, pad_mode=mode)
  assert out.shape == (2, 5, 70)
  np.testing.assert_allclose(out, image, rtol=1e-6, atol=1e-6)
  tile = seen[0][0]                      # the first tile, rows 0..15 of the padded image
  np.testing.assert_array_equal(tile[:, :5], image[:, :, :16])
  if mode == "constant":
    assert not tile[:, 5:].any()
  elif mode == "edge":
    np.testing.assert_array_equal(tile[:, 5], image[:, 4, :16])
  else:                                  # reflect: row 5 mirrors row 3
    np.testing.assert_array_equal(tile[:, 5], image[:, 3, :16])
  with pytest.raises(ValueError, match="pad_mode"):
    T.predict_tiled(fn, image, size=16, stride=16, batch_size=8, pad_mode="wrap")


def test_every_call_sees_a_full_batch_and_bad_outputs_are_refused():
  sizes = []

  def fn(x):
    sizes.append(x.shape[0])
    return x
  image = np.zeros((1, 20, 20))
  T.predict_tiled(fn, image, size=8, stride=6, batch_size=4)     # 3 x 3 = 9 tiles
  assert sizes == [4, 4, 4]
  sizes.clear()
  T.predict_tiled(fn, image, size=8, stride=6, batch_size=4, fill_last_batch=False)
  assert sizes == [4, 4, 1]
  with pytest.raises(ValueError, match="predict_batch_fn returned shape"):
    T.predict_tiled(lambda x: x[:, :, :4], image, size=8, stride=6, batch_size=4)


# --- the official OSCD protocol ---------------------------------------------------------------

SHAPES = {"bercy": (395, 360), "hongkong": (695, 540), "tiny": (100, 400), "rennes": (344, 441)}


def _official_count(h, w):
  """Tiles per image as the official loader computes them: ceil((L - 128 + 1) / 63) per axis."""
  per_axis = [max(0, math.ceil((n - 128 + 1) / 63)) for n in (h, w)]
  return per_axis[0] * per_axis[1]


def test_official_tiles_counted_as_the_official_loader():
  every = T.official_oscd_tiles(SHAPES, batch_size=0)
  assert len(every) == sum(_official_count(*s) for s in SHAPES.values())
  assert _official_count(395, 360) == 20 == sum(t.key == "bercy" for t in every)
  assert not any(t.key == "tiny" for t in every)          # 100 px high: no tile fits
  for t in every:                                         # every tile inside its image
    h, w = SHAPES[t.key]
    assert t.y % 63 == 0 and t.x % 63 == 0 and t.y + 128 <= h and t.x + 128 <= w
  kept = T.official_oscd_tiles(SHAPES)
  assert len(kept) == len(every) // 32 * 32 and kept == every[:len(kept)]
  assert [t.key for t in every[:2]] == ["bercy"] * 2 and (every[1].y, every[1].x) == (0, 63)


def test_official_coverage_leaves_the_border_strip_unscored():
  tiles = T.official_oscd_tiles({"bercy": (395, 360)}, batch_size=0)
  cov = T.official_coverage(tiles, {"bercy": (395, 360)})["bercy"]
  assert cov[:380, :317].min() >= 1                       # last tiles end at 252+128, 189+128
  assert not cov[380:].any() and not cov[:, 317:].any()
  assert cov.max() == 9   # stride 63 < 64: rows 126-127 lie in 3 tiles per axis
  assert cov.sum() == len(tiles) * 128 * 128


def test_official_confusion_counts_each_tile_on_its_own():
  rng = np.random.default_rng(4)
  shapes = {"a": (200, 260), "b": (300, 191)}
  labels = {k: (rng.uniform(size=s) < 0.2).astype(np.int64) for k, s in shapes.items()}
  # Channel 0 of date 1 carries the truth: `perfect` predicts it, `all_change` says change.
  images = {k: (np.stack([labels[k], labels[k] * 0]).astype(np.float32),
                np.zeros((2, *shapes[k]), np.float32)) for k in shapes}

  def perfect(d1, d2):
    return np.stack([1 - d1[:, 0], d1[:, 0]], 1)

  def all_change(d1, d2):
    return np.stack([d2[:, 0], d2[:, 0] + 1], 1)

  kept = T.official_oscd_tiles(shapes, batch_size=4)
  cov = T.official_coverage(kept, shapes)
  changed = sum(int((cov[k] * labels[k]).sum()) for k in shapes)
  unchanged = sum(int((cov[k] * (1 - labels[k])).sum()) for k in shapes)
  acc = T.official_oscd_confusion(perfect, images, labels, batch_size=4)
  np.testing.assert_array_equal(acc.counts, [[unchanged, 0], [0, changed]])
  acc = T.official_oscd_confusion(all_change, images, labels, batch_size=4)
  np.testing.assert_array_equal(acc.counts, [[0, unchanged], [0, changed]])
  with pytest.raises(ValueError, match="label map"):
    T.official_oscd_confusion(perfect, images, {"a": labels["a"], "b": labels["a"]})
  with pytest.raises(ValueError, match="leaves its image"):
    next(T.predict_tiles(perfect, images, [T.ImageTile("a", 100, 0)]))
