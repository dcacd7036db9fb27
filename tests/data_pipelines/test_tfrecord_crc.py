"""TFRecord framing: bit-exact round trip, every flipped bit and truncation detected."""

import io
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from data_pipelines import tfrecord
from data_pipelines.errors import CorruptRecordError

_PAYLOADS = [bytes(np.random.default_rng(i).integers(0, 256, 300 + 97 * i, np.uint8))
             for i in range(4)]


def _shard_bytes(payloads=_PAYLOADS) -> tuple[bytes, list[int]]:
  buf = io.BytesIO()
  w = tfrecord.TFRecordWriter(buf)
  offsets = [w.write(p) for p in payloads]
  return buf.getvalue(), offsets


def _write(path: pathlib.Path, data: bytes) -> str:
  path.write_bytes(data)
  return str(path)


def test_masked_crc_known_values():
  # CRC-32C check value for "123456789" and the TF masking of it.
  import google_crc32c
  assert google_crc32c.value(b"123456789") == 0xE3069283
  crc = 0xE3069283
  assert tfrecord.masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def test_round_trip_bit_exact(tmp_path):
  data, offsets = _shard_bytes()
  path = _write(tmp_path / "s.tfrecord", data)
  got = list(tfrecord.iter_records(path))
  assert [o for o, _ in got] == offsets
  assert [d for _, d in got] == _PAYLOADS
  # Resume from a record offset.
  assert [d for _, d in tfrecord.iter_records(path, start=offsets[2])] == _PAYLOADS[2:]


def _record_containing(offsets, total, pos):
  ends = offsets[1:] + [total]
  return next(o for o, e in zip(offsets, ends) if o <= pos < e)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.integers(min_value=0), bit=st.integers(0, 7))
def test_every_flipped_bit_is_detected(tmp_path, pos, bit):
  data, offsets = _shard_bytes()
  pos %= len(data)
  bad = bytearray(data)
  bad[pos] ^= 1 << bit
  path = _write(tmp_path / "flip.tfrecord", bytes(bad))
  with pytest.raises(CorruptRecordError) as err:
    list(tfrecord.iter_records(path))
  assert err.value.shard == path
  assert err.value.offset == _record_containing(offsets, len(data), pos)
  assert f"byte offset {err.value.offset}" in str(err.value)
  # Skip mode: all other records come back intact, the bad one never does.
  reader = tfrecord.RecordReader(path, skip_corrupt=True)
  good = []
  while (item := reader.read_next()) is not None:
    good.append(item[1])
  victim = offsets.index(_record_containing(offsets, len(data), pos))
  assert good == [p for i, p in enumerate(_PAYLOADS) if i != victim]
  assert reader.corrupt == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=1))
def test_truncation_is_detected(tmp_path, cut):
  data, offsets = _shard_bytes()
  cut %= len(data)
  path = _write(tmp_path / "trunc.tfrecord", data[:cut])
  complete = [i for i, o in enumerate(offsets) if (offsets + [len(data)])[i + 1] <= cut]
  if cut in offsets:   # cut on a record boundary: only the manifest count can tell
    assert [d for _, d in tfrecord.iter_records(path)] == _PAYLOADS[:len(complete)]
    return
  with pytest.raises(CorruptRecordError, match="truncated") as err:
    list(tfrecord.iter_records(path))
  assert err.value.offset == offsets[len(complete)]
  skipped = list(tfrecord.iter_records(path, skip_corrupt=True))
  assert [d for _, d in skipped] == _PAYLOADS[:len(complete)]


def test_grain_source_state_and_skip(tmp_path):
  data, offsets = _shard_bytes()
  bad = bytearray(data)
  bad[offsets[1] + 40] ^= 0xFF
  path = _write(tmp_path / "g.tfrecord", bytes(bad))
  it = iter(tfrecord.CheckedTFRecordIterDataset(path, skip_corrupt=True))
  assert next(it) == _PAYLOADS[0]
  state = it.get_state()
  assert next(it) == _PAYLOADS[2]          # record 1 skipped
  assert it.get_state()["corrupt"] == 1
  it2 = iter(tfrecord.CheckedTFRecordIterDataset(path, skip_corrupt=True))
  it2.set_state(state)
  assert list(it2) == _PAYLOADS[2:]
  strict = iter(tfrecord.CheckedTFRecordIterDataset(path))
  next(strict)
  with pytest.raises(CorruptRecordError, match=f"offset {offsets[1]}"):
    next(strict)


def test_shard_writers_do_not_import_grain():
  """Ingest and Beam workers import the writers only: grain (~1 s) stays unloaded until the
  grain source is asked for, which tfrecord still exports."""
  code = ("import sys, data_pipelines.ingest, data_pipelines.tfrecord\n"
          "assert 'grain' not in sys.modules, 'grain imported by the shard writers'\n")
  subprocess.run([sys.executable, "-c", code], check=True,
                 cwd=pathlib.Path(__file__).resolve().parents[2])
  from data_pipelines import tfrecord_grain
  assert tfrecord.CheckedTFRecordIterDataset is tfrecord_grain.CheckedTFRecordIterDataset
