"""The grain pipeline: batch contract, determinism, resume (state and orbax), host partitions."""

import functools
import shutil

import numpy as np
import pytest

from data_pipelines import config, pipeline, schema, shard_writer, tfrecord, transforms
from data_pipelines import stats as stats_lib
from data_pipelines.errors import CorruptRecordError

import dp_synth


def _cfg(paths, **kw):
  c = config.default_data_config()
  c.paths = paths
  c.batch_size = 4
  c.image_size = 32
  c.shuffle_window = 16
  for k, v in kw.items():
    setattr(c, k, v)
  return c


def _take(it, n):
  return [next(it) for _ in range(n)]


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


def test_batch_contract(synth_dir):
  it = pipeline.make_pipeline(_cfg(synth_dir, label_type="multi", num_classes=19, use_mask=True),
                              process_index=0, process_count=1)
  b = next(it)
  assert b["cube"].shape == (4, 12, 32, 32) and b["cube"].dtype == np.float32
  assert b["label"].shape == (4, 19) and b["label"].dtype == np.float32
  assert b["mask"].shape == (4, 32, 32) and b["mask"].dtype == np.int32
  assert set(np.unique(b["label"])) <= {0.0, 1.0} and b["mask"].max() < 5
  # min-max to [0, 1], then bicubic resampling of noise overshoots a little (as torch's does)
  assert -0.4 < b["cube"].min() and b["cube"].max() < 1.4 and 0.3 < b["cube"].mean() < 0.7
  it.close()
  it = pipeline.make_pipeline(_cfg(synth_dir, bands="B04,B03,B02", label_type="single",
                                   normalization="none", train=False),
                              process_index=0, process_count=1)
  b = next(it)
  assert b["cube"].shape == (4, 3, 32, 32) and b["label"].dtype == np.int32
  # Band values identify the band: band b holds ~1000 * (index in SpectralGPT order + 1).
  np.testing.assert_array_less(np.abs(b["cube"].mean(axis=(0, 2, 3)) - [4250, 3250, 2250]), 100)
  it.close()


def test_deterministic_and_seeded(synth_dir):
  a = _take(pipeline.make_pipeline(_cfg(synth_dir), process_index=0, process_count=1), 3)
  b = _take(pipeline.make_pipeline(_cfg(synth_dir), process_index=0, process_count=1), 3)
  c = _take(pipeline.make_pipeline(_cfg(synth_dir, seed=1), process_index=0, process_count=1), 3)
  _assert_same(a, b)
  assert not np.array_equal(a[0]["cube"], c[0]["cube"])


def test_resume_from_state_gives_identical_batches(synth_dir):
  cfg = _cfg(synth_dir, label_type="single")
  it = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  _take(it, 7)                       # crosses shard/window boundaries, > 1 epoch of 40/4
  state = it.get_state()
  expected = _take(it, 6)
  fresh = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  fresh.set_state(state)
  _assert_same(_take(fresh, 6), expected)


def test_orbax_checkpoint_round_trip(synth_dir, tmp_path):
  import jax.numpy as jnp
  from spectralgpt_jax import checkpoints
  cfg = _cfg(synth_dir)
  it = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  _take(it, 5)
  mngr = checkpoints.make_manager(tmp_path / "run", async_save=False)
  assert checkpoints.save(mngr, 5, {"w": jnp.arange(3.0)}, it, {"note": "x"})
  mngr.wait_until_finished()
  expected = _take(it, 3)
  fresh = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  state, meta = checkpoints.restore(mngr, 5, {"w": jnp.zeros(3)}, fresh)
  np.testing.assert_array_equal(state["w"], [0.0, 1.0, 2.0])
  assert meta == {"note": "x"}
  _assert_same(_take(fresh, 3), expected)
  mngr.close()


def _keys(paths, pi, pc, **kw):
  cfg = _cfg(paths, train=False, num_epochs=1, with_keys=True, drop_remainder=False,
             batch_size=2 * pc, **kw)
  return [k for b in pipeline.make_pipeline(cfg, process_index=pi, process_count=pc)
          for k in b["key"]]


def test_two_processes_read_disjoint_complete_partitions(synth_dir):
  k0, k1 = _keys(synth_dir, 0, 2), _keys(synth_dir, 1, 2)
  assert len(k0) == len(set(k0)) == 20 and len(k1) == len(set(k1)) == 20
  assert not set(k0) & set(k1)
  assert set(k0) | set(k1) == {f"rec-{i:04d}" for i in range(40)}


def test_shard_count_errors(synth_dir):
  with pytest.raises(ValueError, match="4 shard.*3 host.*2 worker.*at least 6"):
    pipeline.make_dataset(_cfg(synth_dir, num_workers=2, batch_size=6), process_index=0,
                          process_count=3)
  with pytest.raises(ValueError, match="not divisible by 3"):
    pipeline.make_dataset(_cfg(synth_dir), process_index=0, process_count=3)


def test_eval_path_is_deterministic_and_matches_manual(synth_dir):
  cfg = _cfg(synth_dir, train=False, num_epochs=1, with_keys=True, drop_remainder=False)
  a = list(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  b = list(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  _assert_same(a, b)
  rec = dp_synth.make_record(int(a[0]["key"][0][4:]))
  el = {"cube": rec["cube"].astype(np.float32)}
  el = transforms.EvalResizeCrop(32).map(transforms.Normalize("minmax").map(el))
  np.testing.assert_allclose(a[0]["cube"][0], el["cube"], rtol=1e-6, atol=1e-6)


def test_normalization_modes(synth_dir):
  kw = dict(train=False, interpolation="nearest", with_keys=True)
  it = pipeline.make_pipeline(_cfg(synth_dir, normalization="zscore", stats="manifest", **kw),
                              process_index=0, process_count=1)
  assert abs(next(it)["cube"].mean()) < 0.5    # dataset statistics from the manifest
  it = pipeline.make_pipeline(_cfg(synth_dir, normalization="sentinel_clip",
                                   stats="fmow_s2_official", **kw),
                              process_index=0, process_count=1)
  b = next(it)
  x = b["cube"]
  assert 0.0 <= x.min() and x.max() <= 1.0
  np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)   # uint8 steps
  rec = dp_synth.make_record(int(b["key"][0][4:]))
  mean, std = stats_lib.FMOW_S2_OFFICIAL.for_bands(rec["bands"])
  want = np.clip((rec["cube"] - (mean - 2 * std)[:, None, None]) / (4 * std)[:, None, None]
                 * 255, 0, 255).astype(np.uint8) / 255.0
  assert set(np.unique(np.round(x[0] * 255))) <= set(np.unique(want * 255))


def test_corrupt_records_in_pipeline(synth_dir, tmp_path):
  dst = tmp_path / "bad"
  shutil.copytree(synth_dir, dst)
  shard = sorted(dst.glob("*.tfrecord"))[0]
  offsets = [o for o, _ in tfrecord.iter_records(shard)]
  data = bytearray(shard.read_bytes())
  data[offsets[1] + 100] ^= 0x01
  shard.write_bytes(bytes(data))
  kw = dict(train=False, num_epochs=1, drop_remainder=False, with_keys=True, batch_size=1)
  with pytest.raises(CorruptRecordError, match=f"{shard.name} at byte offset {offsets[1]}"):
    list(pipeline.make_pipeline(_cfg(str(dst), **kw), process_index=0, process_count=1))
  keys = [k for b in pipeline.make_pipeline(_cfg(str(dst), skip_corrupt=True, **kw),
                                            process_index=0, process_count=1) for k in b["key"]]
  assert len(keys) == len(set(keys)) == 39


def _ts_record(i):
  # Date t = date 0 + 700 t: the same image per date once each date is min-max normalized.
  base = np.random.default_rng(i).integers(0, 3000, (1, 13, 20, 20))
  cube = (base + 700 * np.arange(3)[:, None, None, None]).astype(np.uint16)
  return {"cube": cube, "bands": list(schema.EUROSAT_BANDS), "dates": ["d0", "d1", "d2"],
          "key": f"ts{i}"}


def test_time_series_cubes(tmp_path):
  items = [shard_writer.Item(f"ts{i}", functools.partial(_ts_record, i)) for i in range(4)]
  shard_writer.write_shards(items, tmp_path, num_shards=2)
  for train in (True, False):
    it = pipeline.make_pipeline(_cfg(str(tmp_path), train=train, batch_size=2, image_size=16,
                                     num_dates=3), process_index=0, process_count=1)
    for _ in range(3):
      b = next(it)
      assert b["cube"].shape == (2, 3, 12, 16, 16)   # [B, T, C, S, S], EuroSAT -> SpectralGPT
      # One crop and flip per example for all its dates; normalization per date.
      np.testing.assert_allclose(b["cube"][:, 1:], b["cube"][:, :1].repeat(2, 1), atol=1e-5)
    it.close()
  with pytest.raises(ValueError, match="holds 3 date.*num_dates is 1"):
    next(pipeline.make_pipeline(_cfg(str(tmp_path)), process_index=0, process_count=1))


def test_make_iterator_synthetic_series_any_process_layout():
  def cfg(**kw):
    return _cfg("", source="synthetic", batch_size=4, image_size=16, **kw)
  one = next(pipeline.make_iterator(cfg(), process_index=0, process_count=1))["cube"]
  assert one.shape == (4, 12, 16, 16) and one.dtype == np.float32
  series = next(pipeline.make_iterator(cfg(num_dates=2), process_index=0,
                                       process_count=1))["cube"]
  assert series.shape == (4, 2, 12, 16, 16)
  np.testing.assert_array_equal(series[:, 0], one)      # date 0 is the single-date example
  step = np.abs(series[:, 1] - series[:, 0]).mean()
  assert 0.005 < step < 0.1                              # later dates differ a little
  halves = [next(pipeline.make_iterator(cfg(num_dates=2), process_index=p, process_count=2))
            ["cube"] for p in (0, 1)]
  np.testing.assert_array_equal(np.concatenate(halves), series)
  meta = pipeline.data_meta(cfg(num_dates=2))
  assert meta["normalization"] == {"mode": "minmax", "image_size": 16, "eps": 1e-12}
