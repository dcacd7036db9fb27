"""Exceptions of the data pipeline; each names the file (and record/field) at fault."""

from __future__ import annotations


class BadInputError(ValueError):
  """An input file cannot be ingested.

  Attributes:
    path: the offending file or folder.
    field: which part is wrong (a band name, "dtype", "crs", "shape", "file", ...).
    reason: human-readable explanation.
  """

  def __init__(self, path: object, field: str, reason: str):
    self.path, self.field, self.reason = str(path), field, reason
    super().__init__(f"{self.path}: [{field}] {reason}")

  def __reduce__(self):  # raised in an ingest worker process, re-raised in the parent
    return type(self), (self.path, self.field, self.reason)

  def to_json(self) -> dict[str, str]:
    return {"path": self.path, "field": self.field, "error": self.reason}


class ChecksumError(BadInputError):
  """A file's SHA-256 differs from the one recorded in SHA256SUMS.txt."""


class CorruptRecordError(IOError):
  """A TFRecord record failed its length/data CRC or is truncated.

  Attributes:
    shard: path of the shard file.
    offset: byte offset of the start of the bad record inside the shard.
    reason: what failed.
  """

  def __init__(self, shard: object, offset: int, reason: str):
    self.shard, self.offset, self.reason = str(shard), int(offset), reason
    super().__init__(f"corrupt record in shard {self.shard} at byte offset {offset}: {reason}")

  def __reduce__(self):
    return type(self), (self.shard, self.offset, self.reason)


class CorruptIndexedRecordError(CorruptRecordError):
  """A record of an ArrayRecord shard failed its chunk hash or cannot be read.

  Attributes: as CorruptRecordError (offset -1: not known), plus record: its index in the shard.
  """

  def __init__(self, shard: object, record: int, reason: str):
    super().__init__(shard, -1, reason)
    self.record = int(record)
    self.args = (f"corrupt record in shard {self.shard}, record {self.record}: {reason}",)


class ShardMismatchError(IOError):
  """A shard differs from its manifest (missing, empty, short, surplus, wrong record count),
  or a dataset yields no readable record at all.

  Attributes:
    shard: path of the shard file (or the shard directory).
    reason: what differs, with both numbers.
  """

  def __init__(self, shard: object, reason: str):
    self.shard, self.reason = str(shard), reason
    super().__init__(f"shard {self.shard}: {reason}")

  def __reduce__(self):
    return type(self), (self.shard, self.reason)
