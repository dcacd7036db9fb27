"""Pure-Python TFRecord files with CRC verification (the grain source: tfrecord_grain).

Record framing (TensorFlow's format):
  uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
with masked_crc(x) = ((crc >> 15) | (crc << 17)) + 0xA282EAD8 (mod 2**32), crc = CRC-32C.

grain's own `TFRecordIterDataset` skips both CRCs; `CheckedTFRecordIterDataset` verifies them
(defined in data_pipelines.tfrecord_grain, still importable from here: grain is imported only
when it is first used, not by every ingest or Beam worker that writes shards).
A failed check raises `CorruptRecordError(shard, offset)` or, in skip mode, logs it, counts it
and resynchronises on the next valid record (a record is yielded only if both CRCs match).
A length field that runs past the end of the file is corruption at that offset (never an
allocation of that size). `count_records` walks the headers only (length CRCs), which is how
`sources.verify_shards` checks record counts against a manifest without reading the data.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import google_crc32c
from absl import logging

from data_pipelines import storage
from data_pipelines.errors import CorruptRecordError

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
HEADER_SIZE, FOOTER_SIZE = _HEADER.size, _FOOTER.size
_MASK_DELTA = 0xA282EAD8
_SCAN_CHUNK = 1 << 20


def masked_crc32c(data: bytes | memoryview) -> int:
  crc = google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
  """One framed record: header + data + footer."""
  length = struct.pack("<Q", len(data))
  return length + _FOOTER.pack(masked_crc32c(length)) + data + _FOOTER.pack(masked_crc32c(data))


class TFRecordWriter:
  """Appends framed records to a binary file object; `offset` is the next record's offset."""

  def __init__(self, f: BinaryIO):
    self._f = f
    self.offset = 0
    self.count = 0

  def write(self, data: bytes) -> int:
    """Writes one record; returns its byte offset."""
    start = self.offset
    framed = frame(data)
    self._f.write(framed)
    self.offset += len(framed)
    self.count += 1
    return start


READ_BLOCK = 8 << 20  # bytes fetched per request from an object store


def open_binary(path: str | os.PathLike) -> BinaryIO:
  """Opens a local path or an object-store URL (gs://, s3://: data_pipelines.storage, whose
  read failures name the URL) for reading."""
  p = os.fspath(path)
  if storage.is_url(p):   # records are read in order: fetch 8 MiB ahead, not one request each
    return storage.open(p, "rb", cache_type="readahead", block_size=READ_BLOCK)
  return open(p, "rb", buffering=1 << 16)


class RecordReader:
  """Sequential CRC-checked reader over one shard, seekable to a record offset."""

  def __init__(self, path: str | os.PathLike, *, skip_corrupt: bool = False):
    self.path = os.fspath(path)
    self.skip_corrupt = skip_corrupt
    self.offset = 0
    self.corrupt = 0     # records skipped so far (skip mode)
    self._f: BinaryIO | None = None
    self._size: int | None = None

  def size(self) -> int:
    """The shard's size in bytes (read once)."""
    if self._size is None:
      f = self._file()
      pos = f.tell()
      self._size = f.seek(0, os.SEEK_END)
      f.seek(pos)
    return self._size

  def _file(self) -> BinaryIO:
    if self._f is None:
      self._f = open_binary(self.path)
      self._f.seek(self.offset)
    return self._f

  def seek(self, offset: int) -> None:
    self.offset = int(offset)
    if self._f is not None:
      self._f.seek(self.offset)

  def close(self) -> None:
    if self._f is not None:
      self._f.close()
      self._f = None

  def _try_read(self) -> tuple[bytes | None, str | None]:
    """Reads at self.offset; returns (data, None), (None, None) at EOF or (None, reason)."""
    f = self._file()
    f.seek(self.offset)
    head = f.read(HEADER_SIZE)
    if not head:
      return None, None
    if len(head) < HEADER_SIZE:
      return None, f"truncated header ({len(head)} of {HEADER_SIZE} bytes)"
    length, length_crc = _HEADER.unpack(head)
    if masked_crc32c(head[:8]) != length_crc:
      return None, "length CRC mismatch"
    left = self.size() - self.offset - HEADER_SIZE
    if length + FOOTER_SIZE > left:
      return None, (f"record length field says {length} bytes but only {max(left, 0)} bytes "
                    "are left in the shard (truncated or corrupt)")
    body = f.read(length + FOOTER_SIZE)
    if len(body) < length + FOOTER_SIZE:
      return None, f"truncated record (need {length + FOOTER_SIZE} bytes, have {len(body)})"
    data = body[:length]
    if masked_crc32c(data) != _FOOTER.unpack_from(body, length)[0]:
      return None, "data CRC mismatch"
    return data, None

  def _resync(self, start: int) -> int | None:
    """First offset >= start where a record with valid CRCs begins (None: none left)."""
    f = self._file()
    pos = start
    while True:
      f.seek(pos)
      buf = f.read(_SCAN_CHUNK + HEADER_SIZE)
      if len(buf) < HEADER_SIZE:
        return None
      for i in range(len(buf) - HEADER_SIZE + 1):
        length, crc = _HEADER.unpack_from(buf, i)
        if length < self.size() and masked_crc32c(buf[i:i + 8]) == crc:
          saved = self.offset
          self.offset = pos + i
          data, err = self._try_read()
          self.offset = saved
          if data is not None and err is None:
            return pos + i
      pos += len(buf) - HEADER_SIZE + 1

  def read_next(self) -> tuple[int, bytes] | None:
    """(offset, data) of the next good record, or None at the end of the shard."""
    while True:
      data, err = self._try_read()
      if err is None:
        if data is None:
          return None
        start = self.offset
        self.offset += HEADER_SIZE + len(data) + FOOTER_SIZE
        return start, data
      if not self.skip_corrupt:
        raise CorruptRecordError(self.path, self.offset, err)
      self.corrupt += 1
      logging.warning("skipping corrupt record in %s at byte offset %d: %s",
                      self.path, self.offset, err)
      nxt = self._resync(self.offset + 1)
      if nxt is None:
        self.offset = self._file().seek(0, os.SEEK_END)
        return None
      self.offset = nxt


def iter_records(path: str | os.PathLike, *, skip_corrupt: bool = False,
                 start: int = 0) -> Iterator[tuple[int, bytes]]:
  """Yields (byte offset, record bytes) for every record of a shard, CRC-checked."""
  reader = RecordReader(path, skip_corrupt=skip_corrupt)
  reader.seek(start)
  try:
    while (item := reader.read_next()) is not None:
      yield item
  finally:
    reader.close()


def count_records(path: str | os.PathLike) -> int:
  """Number of records in a shard by walking the headers (length CRCs checked, data not read).

  Raises CorruptRecordError at the first bad header or at a record running past the end."""
  reader = RecordReader(path)
  try:
    f, size, n = reader._file(), reader.size(), 0  # pylint: disable=protected-access
    while reader.offset < size:
      f.seek(reader.offset)
      head = f.read(HEADER_SIZE)
      if len(head) < HEADER_SIZE:
        raise CorruptRecordError(path, reader.offset, f"truncated header ({len(head)} of "
                                 f"{HEADER_SIZE} bytes)")
      length, length_crc = _HEADER.unpack(head)
      if masked_crc32c(head[:8]) != length_crc:
        raise CorruptRecordError(path, reader.offset, "length CRC mismatch")
      end = reader.offset + HEADER_SIZE + length + FOOTER_SIZE
      if end > size:
        raise CorruptRecordError(path, reader.offset, f"record length field says {length} "
                                 f"bytes but only {size - reader.offset - HEADER_SIZE} bytes "
                                 "are left in the shard (truncated or corrupt)")
      reader.offset, n = end, n + 1
    return n
  finally:
    reader.close()


def __getattr__(name: str) -> Any:
  """`CheckedTFRecordIterDataset` from data_pipelines.tfrecord_grain, imported on first use."""
  if name == "CheckedTFRecordIterDataset":
    from data_pipelines import tfrecord_grain  # pylint: disable=g-import-not-at-top
    return tfrecord_grain.CheckedTFRecordIterDataset
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
