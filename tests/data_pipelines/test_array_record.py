"""ArrayRecord shards: same records as TFRecord, global shuffle per epoch, host split, resume,
corrupt chunks named by shard and record, conversion both ways (byte-identical round trip)."""

import json
import pathlib
import shutil

import grain
import numpy as np
import pytest
from scipy import stats

from data_pipelines import config, convert, order, pipeline, record_formats, shard_writer
from data_pipelines import sources
from data_pipelines.errors import CorruptRecordError, ShardMismatchError
from spectralgpt_jax import __main__ as entry

import dp_synth

N = 40
ALL_KEYS = {f"rec-{i:04d}" for i in range(N)}


@pytest.fixture(scope="module")
def arec_dir(tmp_path_factory):
  """The 40 synthetic records of `synth_dir` (same seed, 4 shards) as ArrayRecord."""
  out = tmp_path_factory.mktemp("arec")
  shard_writer.write_shards(dp_synth.make_items(N), out, num_shards=4, record_format="array_record")
  return str(out)


def _cfg(paths, **kw):
  c = config.default_data_config()
  c.paths, c.batch_size, c.image_size, c.with_keys = paths, 4, 32, True
  for k, v in kw.items():
    setattr(c, k, v)
  return c


def _keys(it, n_batches):
  return [str(k) for _ in range(n_batches) for k in next(it)["key"]]


def test_same_records_and_manifest_as_tfrecord(arec_dir, synth_dir):
  ar, tf = sources.read_manifest(arec_dir), sources.read_manifest(synth_dir)
  assert ar["format"] == "spectralgpt_jax.array_record/v1"
  assert record_formats.format_of(ar) == "array_record"
  assert record_formats.format_of(tf) == "tfrecord"
  assert record_formats.format_of({}) == "tfrecord"   # manifests written before the field
  assert [s["records"] for s in ar["shards"]] == [s["records"] for s in tf["shards"]]
  assert all(s["file"].endswith(".array_record") for s in ar["shards"])
  assert ar["stats"] == tf["stats"] and ar["bands"] == tf["bands"]
  # the same record bytes in the same shards and order (SHA-256 of each record, per shard)
  assert convert.records_digest(arec_dir) == convert.records_digest(synth_dir)


def test_array_record_ingest_resumes_byte_identical(arec_dir, tmp_path):
  """An ingest interrupted mid-way leaves no manifest and no temporary file; run again (the
  same plan) it keeps the finished shards and ends with the files of an uninterrupted run."""
  items = dp_synth.make_items(N)
  out = tmp_path / "again"
  boom = shard_writer.Item("rec-0007", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
  with pytest.raises(KeyboardInterrupt):
    shard_writer.write_shards([*items[:7], boom, *items[8:]], out, num_shards=4,
                              record_format="array_record")
  assert not (out / "manifest.json").exists() and not list(out.glob(".tmp.*"))
  shard_writer.write_shards(items, out, num_shards=4, record_format="array_record")
  for s in sources.read_manifest(arec_dir)["shards"]:
    assert (out / s["file"]).read_bytes() == (pathlib.Path(arec_dir) / s["file"]).read_bytes()


def test_epoch_is_a_permutation_split_over_hosts_and_new_each_epoch(arec_dir):
  cfg = _cfg(arec_dir, num_epochs=2)
  hosts = [_keys(pipeline.make_pipeline(cfg, process_index=p, process_count=2), N // 2)
           for p in range(2)]
  epochs = [[k for h in hosts for k in h[e * N // 2:(e + 1) * N // 2]] for e in range(2)]
  for epoch in epochs:
    assert sorted(epoch) == sorted(ALL_KEYS)     # each epoch: every record exactly once
  for e in range(2):   # the hosts' halves of an epoch are disjoint
    assert not set(hosts[0][e * 20:(e + 1) * 20]) & set(hosts[1][e * 20:(e + 1) * 20])
  assert hosts[0][:20] != hosts[0][20:]           # a new order (and split) each epoch
  single = _keys(pipeline.make_pipeline(cfg, process_index=0, process_count=1), N // 4)
  assert single[0::2] == hosts[0][:20] and single[1::2] == hosts[1][:20]


def test_resume_mid_epoch_is_bit_identical(arec_dir):
  cfg = _cfg(arec_dir, label_type="single")    # num_epochs None: repeat forever
  it = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  _keys(it, 13)                               # > 1 epoch, mid-way through the second
  state = it.get_state()
  expected = [next(it) for _ in range(4)]
  fresh = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  fresh.set_state(json.loads(json.dumps(state)))   # as a checkpoint stores it
  for want in expected:
    got = next(fresh)
    assert got.keys() == want.keys()
    for k in want:
      np.testing.assert_array_equal(got[k], want[k])


def test_split_file_keeps_its_records_over_hosts(arec_dir, tmp_path):
  ids = [f"rec-{i:04d}" for i in range(0, N, 3)]   # 14 of the 40
  split = tmp_path / "split.txt"
  split.write_text("\n".join(ids) + "\n")
  cfg = _cfg(arec_dir, num_epochs=1, drop_remainder=False, split_file=str(split))
  keys = [str(k) for p in range(2)
          for b in pipeline.make_pipeline(cfg, process_index=p, process_count=2)
          for k in b["key"]]
  assert sorted(keys) == ids


def _corrupt_record(directory, shard=1, record=3) -> str:
  """Flips one byte inside record `record` of shard `shard`; returns the shard path."""
  m = sources.read_manifest(directory)
  path = str(pathlib.Path(directory) / m["shards"][shard]["file"])
  data = list(record_formats.iter_records(path, "array_record"))[record]
  raw = bytearray(pathlib.Path(path).read_bytes())
  at = raw.find(data)   # uncompressed: the record's bytes are in its chunk as they are
  assert at > 0 and raw.find(data, at + 1) < 0
  raw[at + len(data) // 2] ^= 0xFF
  pathlib.Path(path).write_bytes(bytes(raw))
  return path


def test_corrupt_chunk_is_an_error_naming_shard_and_record(arec_dir, tmp_path):
  bad = tmp_path / "bad"
  shutil.copytree(arec_dir, bad)
  path = _corrupt_record(bad)
  sources.verify_shards(*sources.list_shards(str(bad)))   # sizes and counts still agree
  cfg = _cfg(str(bad), train=False, num_epochs=1, drop_remainder=False)
  with pytest.raises(CorruptRecordError, match=r"data-00001-of-00004\.array_record, record 3"
                     r".*hash mismatch") as e:
    list(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  assert e.value.shard == path and e.value.record == 3
  skip = _cfg(str(bad), train=False, num_epochs=1, drop_remainder=False, skip_corrupt=True)
  keys = [k for b in pipeline.make_pipeline(skip, process_index=0, process_count=1)
          for k in b["key"]]
  assert len(keys) == N - 1 and len(set(keys)) == N - 1
  with pytest.raises(CorruptRecordError, match="record 3"):   # conversion reads verified
    convert.convert_shards(str(bad), str(tmp_path / "out"), "tfrecord")
  assert not (tmp_path / "out" / "manifest.json").exists()


def test_damaged_index_is_a_count_mismatch_naming_the_shard(arec_dir, tmp_path):
  bad = tmp_path / "bad"
  shutil.copytree(arec_dir, bad)
  m = sources.read_manifest(str(bad))
  path = bad / m["shards"][2]["file"]
  raw = bytearray(path.read_bytes())
  last = list(record_formats.iter_records(str(path), "array_record"))[-1]
  raw[raw.find(last) + len(last) + 20] ^= 0xFF   # the footer (chunk index) follows the records
  path.write_bytes(bytes(raw))
  with pytest.raises(ShardMismatchError, match="data-00002-of-00004.array_record"):
    pipeline.make_pipeline(_cfg(str(bad)), process_index=0, process_count=1)


def test_convert_both_ways_is_a_byte_identical_round_trip(synth_dir, tmp_path, capsys):
  ar, tf = tmp_path / "ar", tmp_path / "tf"
  assert entry.main(["convert_shards", "--input", synth_dir, "--out", str(ar),
                     "--format", "array_record"]) == 0
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["records"] == N
  assert entry.main(["convert_shards", "--input", str(ar), "--out", str(tf),
                     "--format", "tfrecord"]) == 0
  for s in sources.read_manifest(synth_dir)["shards"]:
    assert (tf / s["file"]).read_bytes() == (pathlib.Path(synth_dir) / s["file"]).read_bytes()
  back = sources.read_manifest(str(tf))
  assert back["format"] == "spectralgpt_jax.tfrecord/v1" and back["num_records"] == N
  assert back["converted_from"]["format"] == "spectralgpt_jax.array_record/v1"
  assert entry.main(["convert_shards", "--input", str(ar), "--out", str(tf),
                     "--format", "tfrecord"]) == 1   # refuses to replace a dataset
  assert "already holds a dataset" in capsys.readouterr().err


def _position_table(orders, n, bins=16):
  """counts[record group, position bin]: 16 contiguous groups of records x 16 bins of
  positions, summed over the given orders (each a permutation of range(n))."""
  counts = np.zeros((bins, bins), np.int64)
  for order in orders:
    np.add.at(counts, (np.asarray(order) * bins // n, np.arange(n) * bins // n), 1)
  return counts


def _uniform_p(counts) -> float:
  """Chi-square p-value of 'every record group equally likely in every position bin'. Rows
  and columns have fixed sums, so the table has (bins - 1)^2 degrees of freedom."""
  expected = counts.sum() / counts.size
  chi2 = float(((counts - expected) ** 2 / expected).sum())
  return float(stats.chi2.sf(chi2, (counts.shape[0] - 1) ** 2))


def _window_shuffled(n, window, rng):
  """A streaming window shuffle (the TFRecord path's): a buffer of `window` records, each
  output drawn from it at random and replaced by the next input."""
  buf, out = list(range(window)), []
  for nxt in range(window, n):
    out.append(buf.pop(rng.integers(len(buf))))
    buf.append(nxt)
  return out + [buf[i] for i in rng.permutation(len(buf))]


def test_global_shuffle_puts_every_record_anywhere_uniformly():
  n = 4096   # grain's index shuffle is slow for tiny n (cycle walking), quick from ~4k on
  src = grain.MapDataset.range(n)
  orders = []
  for seed in range(7):   # 7 x 4096 positions: ~112 per cell of the 16 x 16 table
    shuffled = order.global_shuffle(src, seed, 1, 0, 1)
    perm = shuffled._getitems(list(range(n)))  # pylint: disable=protected-access  (batched: fast)
    assert sorted(perm) == list(range(n))
    orders.append(perm)
  assert _uniform_p(_position_table(orders, n)) > 1e-3
  # The same test rejects a window shuffle of 512 (records stay near where they were).
  rng = np.random.default_rng(0)
  windowed = [_window_shuffled(n, 512, rng) for _ in range(7)]
  assert _uniform_p(_position_table(windowed, n)) < 1e-9


def test_ingest_format_flag_on_the_real_patches(example_dir, tmp_path, capsys):
  """`ingest --format array_record` on the shipped BigEarthNet patches: the records of the
  TFRecord ingest, `inspect` reads them, the pipeline trains from them."""
  out = {}
  for fmt in ("tfrecord", "array_record"):
    out[fmt] = str(tmp_path / fmt)
    assert entry.main(["ingest", "--source", "bigearthnet", "--input", str(example_dir),
                       "--out", out[fmt], "--shards", "2", "--format", fmt]) == 0
  assert sources.read_manifest(out["array_record"])["format"].endswith("array_record/v1")
  assert convert.records_digest(out["array_record"]) == convert.records_digest(out["tfrecord"])
  assert entry.main(["inspect", out["array_record"]]) == 0
  assert "OK, 6 records in 2 shards" in capsys.readouterr().out
  cfg = _cfg(out["array_record"], label_type="multi", num_classes=19, batch_size=3)
  batch = next(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  assert batch["cube"].shape == (3, 12, 32, 32) and batch["label"].shape == (3, 19)


@pytest.mark.slow
def test_two_workers_resume_and_cover_an_epoch(arec_dir):
  """grain worker processes over ArrayRecord (the source is pickled to each): a resumed
  iterator repeats the batches, a training epoch still holds every record once."""
  cfg = _cfg(arec_dir, num_workers=2, num_epochs=1, drop_remainder=False)
  it = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  try:
    first = [str(k) for _ in range(3) for k in next(it)["key"]]
    state = it.get_state()
    rest = [str(k) for b in it for k in b["key"]]
  finally:
    it.close()
  assert sorted(first + rest) == sorted(ALL_KEYS)
  again = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  try:
    again.set_state(state)
    assert [str(k) for b in again for k in b["key"]] == rest
  finally:
    again.close()
