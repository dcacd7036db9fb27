"""grain source over one TFRecord shard that verifies both CRCs of every record and
checkpoints its byte offset (data_pipelines.tfrecord reads the records).

Kept apart from data_pipelines.tfrecord because importing grain costs ~1 s, which writers of
shards (ingest, Beam and `--workers` processes) never need."""

from __future__ import annotations

import os
from typing import Any

import grain

from data_pipelines.errors import ShardMismatchError
from data_pipelines.tfrecord import RecordReader


class _CheckedIterator(grain.DatasetIterator):
  """State: {"offset": next record's byte offset, "corrupt": records skipped so far,
  "records": records read from the start (-1: unknown)}.

  With `expected` (bytes, records) from the manifest, the shard's size is checked when it is
  opened and, in strict mode, the number of records read when it ends."""

  def __init__(self, path: str, skip_corrupt: bool, expected: tuple[int, int] | None = None):
    super().__init__()
    self._reader = RecordReader(path, skip_corrupt=skip_corrupt)
    self._expected = expected
    self._records = 0
    self._opened = False

  def _open(self) -> None:
    self._opened = True
    if self._expected is None:
      return
    size = self._reader.size()
    if size != self._expected[0]:
      raise ShardMismatchError(self._reader.path, f"{size} bytes on disk, the manifest says "
                               f"{self._expected[0]} (re-ingest or fix the manifest)")

  def __next__(self) -> bytes:
    if not self._opened:
      self._open()
    item = self._reader.read_next()
    if item is None:
      exp = self._expected
      if (exp is not None and not self._reader.skip_corrupt and self._records >= 0
          and self._records != exp[1]):
        raise ShardMismatchError(self._reader.path, f"{self._records} records read, the "
                                 f"manifest says {exp[1]} (re-ingest or fix the manifest)")
      raise StopIteration
    if self._records >= 0:
      self._records += 1
    return item[1]

  def get_state(self) -> dict[str, Any]:
    return {"offset": self._reader.offset, "corrupt": self._reader.corrupt,
            "records": self._records}

  def set_state(self, state: dict[str, Any]) -> None:
    self._reader.seek(state["offset"])
    self._reader.corrupt = int(state.get("corrupt", 0))
    self._records = int(state.get("records", 0 if state["offset"] == 0 else -1))

  def close(self) -> None:
    self._reader.close()

  def __del__(self):
    self._reader.close()


class CheckedTFRecordIterDataset(grain.IterDataset):
  """grain IterDataset over one TFRecord shard that verifies both CRCs of every record."""

  def __init__(self, path: str | os.PathLike, skip_corrupt: bool = False,
               expected: tuple[int, int] | None = None):
    super().__init__()
    self._path = os.fspath(path)
    self._skip_corrupt = skip_corrupt
    self._expected = expected

  def __iter__(self) -> _CheckedIterator:
    return _CheckedIterator(self._path, self._skip_corrupt, self._expected)

  def __str__(self) -> str:
    return f"CheckedTFRecordIterDataset({self._path})"
