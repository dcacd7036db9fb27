"""Dense sources through the grain pipeline (random crops, deterministic and resumable) and
whole images for evaluation, on the real OSCD cities and the real Sen1Floods11 chip."""

import os
import pathlib

import numpy as np
import pytest

from data_pipelines import config, dense, pipeline, schema
from data_pipelines import transforms as T

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
OSCD = pathlib.Path(os.environ.get("SPECTRALGPT_OSCD_DATA", SHARED / "oscd_s2_subset"))
FLOOD = pathlib.Path(os.environ.get("SPECTRALGPT_FLOOD_DATA", SHARED / "sen1floods11_s2_chip"))
TRAIN = "aguasclaras,bercy,bordeaux,paris"


def _root(path, what):
  pytest.importorskip("rasterio")
  if not (path / "SHA256SUMS.txt").exists():
    pytest.skip(f"{what} not found at {path}")
  return path


@pytest.fixture(scope="module")
def oscd_root():
  from data_pipelines.checksums import verify_sha256sums
  root = _root(OSCD, "OSCD subset (set SPECTRALGPT_OSCD_DATA)")
  verify_sha256sums(root)   # the published files, unaltered
  return root


@pytest.fixture(scope="module")
def flood_dir():
  return _root(FLOOD, "Sen1Floods11 chip (set SPECTRALGPT_FLOOD_DATA)")


def _oscd_cfg(root, **kw):
  c = config.default_data_config()
  c.update(source="oscd", paths=str(root), image_size=32, batch_size=4,
           rot90=True, with_keys=True, seed=3)
  c.oscd.cities = kw.pop("cities", TRAIN)
  c.update(kw)
  return c


def _take(it, n):
  return [next(it) for _ in range(n)]


def _same(a, b):
  return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_random_dense_crop_moves_every_field_alike():
  rng = np.random.default_rng(0)
  yy, xx = np.mgrid[:40, :50]
  base = (yy * 100 + xx).astype(np.float32)
  el = {"cube": np.stack([base, -base]), "cube2": base[None] + 0.5, "mask": (yy * 100 + xx)}
  crop = T.RandomDenseCrop(16, hflip_prob=0.5, vflip_prob=0.5, rot90=True)
  seen = set()
  for _ in range(20):
    out = crop.random_map(el, rng)
    assert out["cube"].shape == (2, 16, 16) and out["mask"].shape == (16, 16)
    np.testing.assert_array_equal(out["cube"][0], out["mask"])
    np.testing.assert_array_equal(out["cube"][1], -out["mask"])
    np.testing.assert_array_equal(out["cube2"][0], out["mask"] + 0.5)
    window = set(out["mask"].ravel().tolist())     # a contiguous window, only reordered
    r0, c0 = divmod(min(window), 100)
    assert window == set((base[r0:r0 + 16, c0:c0 + 16]).astype(int).ravel().tolist())
    seen.add((out["mask"][0, 0] - min(window), out["mask"][0, 1] - out["mask"][0, 0]))
  assert len(seen) > 2          # flips and turns happen
  small = crop.random_map({"cube": base[None, :8, :10], "mask": yy[:8, :10]}, rng)
  assert small["cube"].shape == (1, 16, 16) and (small["mask"] == -1).sum() == 16 * 16 - 80


def test_oscd_crops_deterministic_and_resumable(oscd_root):
  it = pipeline.make_pipeline(_oscd_cfg(oscd_root), process_index=0, process_count=1)
  first = _take(it, 3)
  b = first[0]
  assert b["cube"].shape == b["cube2"].shape == (4, 12, 32, 32)
  assert b["mask"].shape == (4, 32, 32) and b["mask"].dtype == np.int32
  assert b["cube"].dtype == np.float32 and 0.0 <= b["cube"].min() and b["cube"].max() <= 1.0
  assert set(np.unique(np.concatenate([x["mask"] for x in first]))) <= {0, 1}
  assert set(np.concatenate([x["key"] for x in first])) <= set(TRAIN.split(","))
  again = _take(pipeline.make_pipeline(_oscd_cfg(oscd_root), process_index=0,
                                       process_count=1), 3)
  assert _same(first, again)                           # same seed, same crops
  other = _take(pipeline.make_pipeline(_oscd_cfg(oscd_root, seed=4), process_index=0,
                                       process_count=1), 3)
  assert not _same(first, other)
  state = it.get_state()
  later = _take(it, 2)
  it.set_state(state)
  assert _same(later, _take(it, 2))                    # resumes where it stood


def test_oscd_epoch_visits_cities_by_area(oscd_root):
  cfg = _oscd_cfg(oscd_root, num_epochs=1, drop_remainder=False, batch_size=8)
  keys = np.concatenate([b["key"] for b in pipeline.make_pipeline(cfg, process_index=0,
                                                                  process_count=1)])
  images = {r["key"]: r["mask"].shape for r in dense.dense_records(cfg)}
  want = {k: -(-h // 32) * -(-w // 32) for k, (h, w) in images.items()}
  assert {k: int((keys == k).sum()) for k in want} == want


def test_patch_scope_normalises_each_crop(oscd_root):
  cfg = _oscd_cfg(oscd_root, minmax_scope="patch", minmax_eps=0.0)
  b = next(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  lo, hi = b["cube"].min(axis=(-2, -1)), b["cube"].max(axis=(-2, -1))
  np.testing.assert_allclose(lo, 0.0, atol=1e-6)
  np.testing.assert_allclose(hi, 1.0, atol=1e-6)


def test_oscd_whole_images_for_evaluation(oscd_root):
  cfg = _oscd_cfg(oscd_root, cities="rennes,hongkong")
  images = dense.load_dense_images(cfg)
  assert [im["key"] for im in images] == ["rennes", "hongkong"]
  for im in images:
    assert im["cube"].shape == im["cube2"].shape == (12,) + im["mask"].shape
    mins, maxs = im["cube"].min(axis=(1, 2)), im["cube"].max(axis=(1, 2))
    np.testing.assert_allclose(mins, 0.0, atol=1e-6)
    np.testing.assert_allclose(maxs, 1.0, atol=1e-6)
    assert im["transform"] is None and im["date"] < im["date2"]
    assert im["bands"] == list(schema.SPECTRALGPT_BANDS)
  assert dense.tile_normalizer(cfg)(images[0]["cube"]) is images[0]["cube"]
  raw = dense.load_dense_images(_oscd_cfg(oscd_root, cities="rennes", minmax_scope="patch"))
  assert raw[0]["cube"].max() > 100                   # DN, normalised per tile later
  tile = dense.tile_normalizer(_oscd_cfg(oscd_root, minmax_scope="patch"))(
      raw[0]["cube"][:, :64, :64])
  np.testing.assert_allclose(tile.max(axis=(1, 2)), 1.0, atol=1e-6)


def test_oscd_eval_mode_points_to_whole_images(oscd_root):
  with pytest.raises(ValueError, match="load_dense_images"):
    pipeline.make_pipeline(_oscd_cfg(oscd_root, train=False), process_index=0,
                           process_count=1)


def test_flood_chip_segmentation(flood_dir):
  cfg = config.default_data_config()
  cfg.update(source="sen1floods11_seg", paths=str(flood_dir), image_size=128, batch_size=4,
             verify_sha256=True)
  b = next(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  assert b["cube"].shape == (4, 12, 128, 128) and "cube2" not in b
  assert set(np.unique(b["mask"])) <= {-1, 0, 1}
  (im,) = dense.load_dense_images(cfg)
  assert im["key"] == "Spain_7370579" and im["cube"].shape == (12, 512, 512)
  assert im["cube2"] is None and im["crs"] == "EPSG:4326"
  counts = {v: int((im["mask"] == v).sum()) for v in (-1, 0, 1)}
  assert 0.2 < counts[1] / im["mask"].size < 0.35 and 0 < counts[-1] < 0.001 * im["mask"].size
  a, _, c, _, e, f = im["transform"]
  left, bottom, right, top = im["bounds"]
  assert (c, f) == (left, top) and a * 512 == pytest.approx(right - left)
  assert e * 512 == pytest.approx(bottom - top)
  assert schema.SPECTRALGPT_BANDS == tuple(cfg.bands.split(","))


def test_flood_label_outside_minus_one_zero_one_is_refused(flood_dir, tmp_path):
  import rasterio
  from data_pipelines import sen1floods11
  from data_pipelines.errors import BadInputError
  (tmp_path / "S2Hand").mkdir()
  (tmp_path / "LabelHand").mkdir()
  src = flood_dir / "S2Hand" / "Spain_7370579_S2Hand.tif"
  (tmp_path / "S2Hand" / src.name).symlink_to(src)
  bad = tmp_path / "LabelHand" / "Spain_7370579_LabelHand.tif"
  with rasterio.open(bad, "w", driver="GTiff", height=512, width=512, count=1, dtype="int16",
                     crs="EPSG:4326", transform=rasterio.Affine(1e-4, 0, 0, 0, -1e-4, 0)) as dst:
    dst.write(np.full((1, 512, 512), 2, np.int16))
  with pytest.raises(BadInputError, match=r"LabelHand\.tif: \[label\] values \[2\]"):
    sen1floods11.chip_records(tmp_path)
