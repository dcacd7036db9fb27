"""Convert a shard directory between record formats (TFRecord <-> ArrayRecord), verified.

Every record is read with its format's check (TFRecord CRCs, ArrayRecord chunk hashes) after
the shards are checked against the manifest, and written in the same shard and order under
the other format's suffix. Each output shard is written under a temporary name, read back and
compared with the input (record count and the SHA-256 of every record, in order) and only
then renamed to its final name; the manifest (the input's, with the new format and shard
sizes) is written last, atomically, so a directory with a manifest is complete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pathlib
from typing import Any

from absl import logging

from data_pipelines import record_formats
from data_pipelines import sources
from data_pipelines.atomic_io import atomic_write_json
from data_pipelines.errors import ShardMismatchError
from data_pipelines.shard_writer import MANIFEST


def _digest(data: bytes) -> bytes:
  return hashlib.sha256(data).digest()


def _convert_one(src: str, src_fmt: str, dst: pathlib.Path, fmt: str) -> tuple[int, str]:
  """Writes shard `src` as `dst` in `fmt`; returns (records, SHA-256 over record digests)."""
  tmp = dst.parent / f".tmp.{dst.name}.{os.getpid()}"
  digests = []
  writer = record_formats.open_writer(fmt, tmp)
  try:
    try:
      for data in record_formats.iter_records(src, src_fmt):
        writer.write(data)
        digests.append(_digest(data))
    except BaseException:
      writer.abort()
      raise
    writer.close()
    back = [_digest(d) for d in record_formats.iter_records(str(tmp), fmt)]
    if back != digests:
      bad = next((i for i, (a, b) in enumerate(zip(back, digests)) if a != b), len(back))
      raise ShardMismatchError(str(dst), f"read back {len(back)} records, wrote "
                               f"{len(digests)}; first difference at record {bad}")
    os.replace(tmp, dst)
  finally:
    tmp.unlink(missing_ok=True)
  return len(digests), hashlib.sha256(b"".join(digests)).hexdigest()


def _check_out(out: pathlib.Path, source: pathlib.Path, overwrite: bool) -> None:
  if out.resolve() == source.resolve():
    raise ValueError(f"--out {out} is the input directory; choose another")
  if (out / MANIFEST).exists() and not overwrite:
    raise FileExistsError(f"{out} already holds a dataset ({MANIFEST}); choose another --out "
                          "or pass --overwrite")
  out.mkdir(parents=True, exist_ok=True)
  (out / MANIFEST).unlink(missing_ok=True)   # the old dataset stops looking complete now


def convert_shards(input_dir: str, out_dir: str, record_format: str, *,
                   overwrite: bool = False) -> dict[str, Any]:
  """Writes the shards of `input_dir` in `record_format` to `out_dir`; returns the new
  manifest. Raises (naming shard and record) on any corrupt record or count mismatch."""
  fmt = record_formats.check_format(record_format)
  files, manifest = sources.list_shards(input_dir)
  if manifest is None:
    raise FileNotFoundError(f"no {MANIFEST} in {input_dir}: convert a shard directory")
  src_fmt = record_formats.format_of(manifest, f"{input_dir}/{MANIFEST}")
  sources.verify_shards(files, manifest)   # sizes and counts first (strict)
  out = pathlib.Path(out_dir)
  _check_out(out, pathlib.Path(input_dir), overwrite)
  shards, digests = [], []
  for path, entry in zip(files, manifest["shards"]):
    name = _renamed(entry["file"], src_fmt, fmt)
    n, digest = _convert_one(path, src_fmt, out / name, fmt)
    if n != int(entry["records"]):
      raise ShardMismatchError(path, f"{n} records read, the manifest says {entry['records']}")
    shards.append({"file": name, "records": n, "bytes": (out / name).stat().st_size})
    digests.append(digest)
    logging.info("%s -> %s: %d records", path, out / name, n)
  now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
  new = dict(manifest)
  new.update({"format": record_formats.manifest_format(fmt), "shards": shards,
              "converted_from": {"directory": str(input_dir),
                                 "format": record_formats.manifest_format(src_fmt),
                                 "shard_records_sha256": digests, "date": now}})
  atomic_write_json(out / MANIFEST, new)
  return new


def _renamed(name: str, src_fmt: str, fmt: str) -> str:
  suffix = record_formats.extension(src_fmt)
  stem = name[:-len(suffix)] if name.endswith(suffix) else name
  return stem + record_formats.extension(fmt)


def records_digest(directory: str) -> list[str]:
  """SHA-256 over the record digests of each shard of a directory, in manifest order (what
  `convert_shards` compares; equal lists = the same records in the same shards and order)."""
  files, manifest = sources.list_shards(directory)
  fmt = sources.record_format(files, manifest)
  return [hashlib.sha256(b"".join(_digest(d) for d in record_formats.iter_records(f, fmt)))
          .hexdigest() for f in files]
