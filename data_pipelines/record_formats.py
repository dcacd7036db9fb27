"""Record-file formats of a shard directory: TFRecord and ArrayRecord behind one interface.

Both hold the same records (the bytes `example_codec.encode_record` makes); the manifest's
"format" field names which one a directory uses ("spectralgpt_jax.tfrecord/v1" or
"spectralgpt_jax.array_record/v1"; a manifest without it is TFRecord).

Integrity. TFRecord frames every record with CRC-32C of its length and of its data
(data_pipelines.tfrecord). ArrayRecord is a Riegeli file: every chunk carries a 64-bit
HighwayHash of its header and of its data, checked on every read. Shards are written with
group_size 1, so each record is its own chunk and the format itself checks every record: a
flipped byte in a record's chunk fails that record's read, which `ArrayRecordShards` reports as
`CorruptRecordError` naming the shard and the record index. A damaged footer (the chunk index)
makes the file open with a wrong record count, which the manifest check
(`sources.verify_shards`) reports for the shard. Shards are stored uncompressed (the records
are the same bytes as in TFRecord; reads need no decompression).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Sequence
from typing import Any

from absl import logging

from data_pipelines import tfrecord
from data_pipelines.errors import CorruptIndexedRecordError, CorruptRecordError
from data_pipelines.errors import ShardMismatchError

TFRECORD, ARRAY_RECORD = "tfrecord", "array_record"
FORMATS = (TFRECORD, ARRAY_RECORD)
_MANIFEST_FORMAT = {TFRECORD: "spectralgpt_jax.tfrecord/v1",
                    ARRAY_RECORD: "spectralgpt_jax.array_record/v1"}
# One record per chunk (per-record hashes, cheapest random access), no compression.
ARRAY_RECORD_OPTIONS = "group_size:1,uncompressed"
_READ_OPTIONS = "readahead_buffer_size:0"


def check_format(name: str) -> str:
  if name not in FORMATS:
    raise ValueError(f"record format {name!r} is not one of {FORMATS}")
  return name


def extension(fmt: str) -> str:
  """File name suffix of a shard of `fmt` (".tfrecord", ".array_record")."""
  return "." + check_format(fmt)


def manifest_format(fmt: str) -> str:
  """The manifest's "format" value for shards of `fmt`."""
  return _MANIFEST_FORMAT[check_format(fmt)]


def format_of(manifest: dict[str, Any] | None, where: str = "manifest.json") -> str:
  """Record format of a manifest ("tfrecord" when it has no "format" field)."""
  value = (manifest or {}).get("format")
  if value is None:
    return TFRECORD
  for fmt, text in _MANIFEST_FORMAT.items():
    if value == text:
      return fmt
  raise ValueError(f"{where}: format {value!r} is not one this version reads "
                   f"({sorted(_MANIFEST_FORMAT.values())})")


def format_of_files(files: Sequence[str]) -> str:
  """Record format of shard files without a manifest, from their suffix (default TFRecord)."""
  kinds = {ARRAY_RECORD if os.fspath(f).endswith(extension(ARRAY_RECORD)) else TFRECORD
           for f in files}
  if len(kinds) > 1:
    raise ValueError(f"shards mix record formats {sorted(kinds)}: {list(files)[:4]}")
  return kinds.pop() if kinds else TFRECORD


# ------------------------------------------------------------------------------ writers

class _TFRecordFile:
  def __init__(self, path: str):
    self._f = open(path, "wb")
    self._writer = tfrecord.TFRecordWriter(self._f)

  @property
  def count(self) -> int:
    return self._writer.count

  def write(self, data: bytes) -> None:
    self._writer.write(data)

  def close(self) -> None:
    self._f.flush()
    os.fsync(self._f.fileno())
    self._f.close()

  def abort(self) -> None:
    self._f.close()


class _ArrayRecordFile:
  def __init__(self, path: str):
    from array_record.python.array_record_module import ArrayRecordWriter  # pylint: disable=g-import-not-at-top
    self._path = path
    self._writer = ArrayRecordWriter(path, ARRAY_RECORD_OPTIONS)
    self.count = 0

  def write(self, data: bytes) -> None:
    self._writer.write(data)
    self.count += 1

  def close(self) -> None:
    self._writer.close()
    fd = os.open(self._path, os.O_RDONLY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)

  def abort(self) -> None:
    _close_quietly(self._writer)


_WRITERS = {TFRECORD: _TFRecordFile, ARRAY_RECORD: _ArrayRecordFile}


def open_writer(fmt: str, path: str | os.PathLike):
  """A writer of one local shard file: `.write(bytes)`, `.count`, `.close()` (flushes and
  fsyncs; the file is complete only after it) and `.abort()` (closes, no guarantee)."""
  return _WRITERS[check_format(fmt)](os.fspath(path))


# ------------------------------------------------------------------------------ readers

def _open_array_record(path: str):
  from array_record.python.array_record_module import ArrayRecordReader  # pylint: disable=g-import-not-at-top
  if "://" in path:
    raise ValueError(f"{path}: ArrayRecord shards are read from a local path (a bucket "
                     "mounted with gcsfuse is one); convert to TFRecord to read a URL")
  try:
    return ArrayRecordReader(path, _READ_OPTIONS)
  except (RuntimeError, ValueError, OSError) as e:
    raise CorruptRecordError(path, 0, f"cannot open as ArrayRecord: {_short(e)}") from e


def _short(e: Exception) -> str:
  return str(e).splitlines()[0][:300] if str(e) else type(e).__name__


def _close_quietly(handle) -> None:
  """Closes an ArrayRecord reader or writer whose failure is already being reported."""
  try:
    handle.close()
  except (RuntimeError, ValueError, OSError) as e:
    logging.warning("closing an ArrayRecord file: %s", _short(e))


def count_records(path: str, fmt: str) -> int:
  """Records in one shard (TFRecord: header walk; ArrayRecord: its chunk index)."""
  if check_format(fmt) == TFRECORD:
    return tfrecord.count_records(path)
  reader = _open_array_record(os.fspath(path))
  try:
    n = int(reader.num_records())
    reader.close()   # a damaged index may surface only here
  except (RuntimeError, ValueError, OSError) as e:
    raise CorruptRecordError(path, 0, f"cannot read its index: {_short(e)}") from e
  return n


def iter_records(path: str, fmt: str) -> Iterator[bytes]:
  """Every record of one shard in file order, each verified (CRCs or chunk hashes)."""
  if check_format(fmt) == TFRECORD:
    for _, data in tfrecord.iter_records(path):
      yield data
    return
  src = ArrayRecordShards([os.fspath(path)])
  try:
    for i in range(len(src)):
      yield src[i]
  finally:
    src.close()


class ArrayRecordShards:
  """Random access to every record of a list of ArrayRecord shards (a grain data source).

  Record i is in shard k where the cumulative counts pass i. `counts` (from the manifest)
  are checked against each shard's own index when it is first opened. A record whose chunk
  fails its hash raises `CorruptRecordError` naming shard and record index; with
  `skip_corrupt` it is logged and returned as b"" (the pipeline filters those out).
  Picklable: readers open lazily in each process.
  """

  def __init__(self, files: Sequence[str], counts: Sequence[int] | None = None, *,
               skip_corrupt: bool = False):
    self._files = [os.fspath(f) for f in files]
    self._skip_corrupt = skip_corrupt
    self._counts = list(counts) if counts is not None else [
        count_records(f, ARRAY_RECORD) for f in self._files]
    if len(self._counts) != len(self._files):
      raise ValueError(f"{len(self._counts)} counts for {len(self._files)} shards")
    self._starts = [0]
    for c in self._counts:
      self._starts.append(self._starts[-1] + int(c))
    self._readers: dict[int, Any] = {}

  def __len__(self) -> int:
    return self._starts[-1]

  def locate(self, index: int) -> tuple[int, int]:
    """(shard number, record index inside that shard) of global record `index`."""
    if not 0 <= index < len(self):
      raise IndexError(f"record {index} not in [0, {len(self)})")
    k = bisect.bisect_right(self._starts, index) - 1
    return k, index - self._starts[k]

  def _reader(self, k: int):
    if k not in self._readers:
      reader = _open_array_record(self._files[k])
      n = int(reader.num_records())
      if n != self._counts[k]:
        _close_quietly(reader)
        raise ShardMismatchError(self._files[k], f"{n} records in its index, the manifest "
                                 f"says {self._counts[k]} (re-ingest or fix the manifest)")
      self._readers[k] = reader
    return self._readers[k]

  def __getitem__(self, index: int) -> bytes:
    k, j = self.locate(int(index))
    try:
      return self._reader(k).read([j])[0]
    except (RuntimeError, ValueError, OSError) as e:
      if isinstance(e, (CorruptRecordError, ShardMismatchError)):
        raise
      err = CorruptIndexedRecordError(self._files[k], j, _short(e))
      if not self._skip_corrupt:
        raise err from e
      logging.warning("skipping %s", err)
      return b""

  def close(self) -> None:
    for reader in self._readers.values():
      _close_quietly(reader)
    self._readers = {}

  def __getstate__(self) -> dict[str, Any]:
    state = dict(self.__dict__)
    state["_readers"] = {}
    return state

  def __repr__(self) -> str:
    return f"ArrayRecordShards({len(self._files)} shards, {len(self)} records)"
