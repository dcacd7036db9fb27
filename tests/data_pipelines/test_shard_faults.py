"""Fault injection on shard sets: files that differ from the manifest, corrupt and truncated
records at random offsets and at record boundaries, absurd length fields, nothing readable.
Every error names the shard."""

import json
import os
import pathlib
import random
import shutil
import struct

import pytest

import dp_synth
from data_pipelines import config, pipeline, sources, tfrecord
from data_pipelines.errors import CorruptRecordError, ShardMismatchError


def _cfg(paths, **kw):
  c = config.default_data_config()
  c.paths, c.batch_size, c.image_size, c.shuffle_window = str(paths), 2, 32, 1
  c.num_epochs = 1
  c.drop_remainder = False
  for k, v in kw.items():
    setattr(c, k, v)
  return c


@pytest.fixture
def shards(tmp_path):
  """6 records in 2 shards (3 each) with manifest, in a fresh folder per test."""
  out = tmp_path / "ds"
  dp_synth.write_dataset(out, n=6, shards=2, size=24)
  return out


def _shard(folder: pathlib.Path, k: int = 1) -> pathlib.Path:
  return sorted(folder.glob("*.tfrecord"))[k]


def _offsets(path) -> list[int]:
  return [o for o, _ in tfrecord.iter_records(path)]


def _count(it) -> int:
  return sum(len(b["cube"]) for b in it)


def test_intact_set_reads_every_record(shards):
  assert _count(pipeline.make_pipeline(_cfg(shards))) == 6


def _empty(p):
  p.write_bytes(b"")


def _cut_at_boundary(p):
  p.write_bytes(p.read_bytes()[:_offsets(p)[-1]])


def _delete(p):
  p.unlink()


@pytest.mark.parametrize("damage, text", [(_empty, "empty: 0 bytes"),
                                          (_cut_at_boundary, "short:"),
                                          (_delete, "missing")])
def test_damaged_shard_is_an_error_naming_it(shards, damage, text):
  bad = _shard(shards)
  damage(bad)
  with pytest.raises(ShardMismatchError, match=text) as err:
    pipeline.make_pipeline(_cfg(shards))
  assert str(bad) in str(err.value)


@pytest.mark.parametrize("damage", [_empty, _cut_at_boundary, _delete])
def test_skip_mode_skips_and_reports_the_shard(shards, damage):
  bad = _shard(shards)
  damage(bad)
  it = pipeline.make_pipeline(_cfg(shards, skip_corrupt=True))
  assert _count(it) == 3
  skipped = pipeline.skipped_inputs(it)
  assert len(skipped) == 1 and str(bad) in skipped[0]


def test_manifest_with_wrong_counts(shards):
  man = json.loads((shards / "manifest.json").read_text())
  man["shards"][0]["records"] += 1
  (shards / "manifest.json").write_text(json.dumps(man))
  with pytest.raises(ShardMismatchError, match="3 records on disk, the manifest says 4") as err:
    pipeline.make_pipeline(_cfg(shards))
  assert man["shards"][0]["file"] in str(err.value)


def test_surplus_shard_is_named(shards):
  extra = shards / "stray-00000-of-00001.tfrecord"
  shutil.copy(_shard(shards, 0), extra)
  with pytest.raises(ShardMismatchError, match="surplus") as err:
    pipeline.make_pipeline(_cfg(shards))
  assert str(extra) in str(err.value)


def test_shard_changed_after_verification_fails_when_opened(shards):
  """The reader itself checks size (on open) and record count (at the end) in strict mode."""
  bad = _shard(shards, 0)
  it = pipeline.make_pipeline(_cfg(shards, shuffle=False, cycle_length=1))
  _cut_at_boundary(bad)
  with pytest.raises(ShardMismatchError, match="the manifest says") as err:
    _count(it)
  assert str(bad) in str(err.value)


def test_huge_length_field_is_corruption_at_its_offset(shards):
  bad = _shard(shards)
  data = bytearray(bad.read_bytes())
  off = _offsets(bad)[1]
  length = struct.pack("<Q", 1 << 40)
  data[off:off + 12] = length + struct.pack("<I", tfrecord.masked_crc32c(length))
  bad.write_bytes(bytes(data))
  with pytest.raises(CorruptRecordError) as err:
    list(tfrecord.iter_records(bad))
  assert err.value.offset == off and str(bad) in str(err.value)
  assert "bytes are left" in str(err.value)
  with pytest.raises(ShardMismatchError, match=f"corrupt at byte offset {off}") as err:
    pipeline.make_pipeline(_cfg(shards))
  assert str(bad) in str(err.value)


def test_random_flips_and_truncations_name_the_shard(shards):
  """Damage at random offsets: strict mode raises naming the shard (before or while
  reading); skip mode reads only records whose CRCs pass."""
  rng = random.Random(0)
  pristine = {p: p.read_bytes() for p in shards.glob("*.tfrecord")}
  for trial in range(12):
    for p, b in pristine.items():
      p.write_bytes(b)
    bad = rng.choice(sorted(pristine))
    data = bytearray(pristine[bad])
    pos = rng.randrange(len(data))
    if trial % 2:
      data[pos] ^= 1 << rng.randrange(8)
    else:
      data = data[:pos]
    bad.write_bytes(bytes(data))
    with pytest.raises((ShardMismatchError, CorruptRecordError)) as err:
      _count(pipeline.make_pipeline(_cfg(shards)))
    assert str(bad) in str(err.value), (trial, pos, str(err.value))
    n = _count(pipeline.make_pipeline(_cfg(shards, skip_corrupt=True)))
    assert 3 <= n <= 5, (trial, pos, n)


def test_skip_mode_with_nothing_readable_stops(shards):
  for p in shards.glob("*.tfrecord"):
    data = bytearray(p.read_bytes())
    for off in _offsets(p):
      data[off + 20] ^= 0xFF   # inside each record's data: data CRC fails
    p.write_bytes(bytes(data))
  with pytest.raises(ShardMismatchError, match="found no record whose CRCs pass"):
    pipeline.make_pipeline(_cfg(shards, skip_corrupt=True, num_epochs=None))


def test_glob_without_manifest_still_checks_each_file(shards):
  os.remove(shards / "manifest.json")
  bad = _shard(shards)
  _empty(bad)
  files, problems = sources.verify_shards(sorted(map(str, shards.glob("*.tfrecord"))), None,
                                          skip=True)
  assert len(files) == 1 and str(bad) in problems[0] and "empty" in problems[0]
