"""Shard listing and manifest reading for local paths and object stores (gs://, s3://).

`paths` in the data config may be: a shard directory holding manifest.json (the shard list
comes from the manifest), a glob pattern ("/data/ben/*.tfrecord", "gs://b/ben/data-*"), or a
comma-separated list of shard files. Every path goes through `data_pipelines.storage` (local,
gs://, s3://, any fsspec URL; a gcsfuse mount is a local path).

`verify_shards` compares the shards with their manifest before anything trains on them (sizes,
record counts by a header walk, missing / empty / surplus files); strict mode raises
`ShardMismatchError` naming the file, skip mode drops the shard and returns what it dropped.
"""

from __future__ import annotations

import json
from typing import Any

from absl import logging

from data_pipelines import datasets, record_formats, storage
from data_pipelines.errors import CorruptRecordError, ShardMismatchError
from data_pipelines.shard_writer import MANIFEST
from data_pipelines.tfrecord import RecordReader


def _is_glob(s: str) -> bool:
  return any(c in s for c in "*?[")


def read_manifest(directory: str) -> dict[str, Any]:
  """The manifest.json of a shard directory (FileNotFoundError naming it when absent)."""
  path = storage.join(directory, MANIFEST)
  if not storage.exists(path):
    raise FileNotFoundError(f"no {MANIFEST} in {directory}")
  try:
    return json.loads(storage.read_text(path))
  except ValueError as e:
    raise ValueError(f"{path}: invalid JSON ({e})") from e


def list_shards(paths: str, *, allow_missing: bool = False
                ) -> tuple[list[str], dict[str, Any] | None]:
  """Resolves `paths` to sorted shard files; also returns the manifest when there is one.

  Shards the manifest lists but that do not exist raise, unless `allow_missing` (then
  `verify_shards` reports them)."""
  if not paths:
    raise ValueError("data.paths is empty: give a shard directory, a glob or a file list")
  specs = [p.strip() for p in str(paths).split(",") if p.strip()]
  if len(specs) == 1 and not _is_glob(specs[0]) and storage.isdir(specs[0]):
    directory = specs[0].rstrip("/")
    manifest = read_manifest(directory)
    files = [storage.join(directory, s["file"]) for s in manifest["shards"]]
    present = set(storage.listdir(directory))
    missing = [f for f in files if storage.basename(f) not in present]
    if missing and not allow_missing:
      raise FileNotFoundError(f"{directory}: shards listed in {MANIFEST} are missing: "
                              f"{missing[:5]}")
    return files, manifest
  files: list[str] = []
  for spec in specs:
    if _is_glob(spec):
      hits = storage.glob(spec)
      if not hits:
        raise FileNotFoundError(f"no shard matches {spec!r}")
      files.extend(hits)
    else:
      if not storage.exists(spec):
        raise FileNotFoundError(f"shard {spec!r} does not exist")
      files.append(spec)
  manifest = None
  parents = {storage.parent(f) for f in files}
  if len(parents) == 1 and storage.exists(storage.join(next(iter(parents)), MANIFEST)):
    manifest = read_manifest(next(iter(parents)))
  return sorted(set(files)), manifest


def manifest_num_records(data_cfg) -> tuple[int, str] | None:
  """(examples per epoch, where that number comes from) of a "tfrecord" `config.data` whose
  shards have a manifest: its num_records, or the number of ids in `split_file` when one is
  set; None for other sources or shards without a manifest."""
  if (datasets.get(data_cfg.get("source", "tfrecord")).kind != "shards"
      or not data_cfg.get("paths")):
    return None
  files, manifest = list_shards(data_cfg.paths, allow_missing=True)
  if manifest is None or "num_records" not in manifest:
    return None
  folder = storage.parent(files[0]) if files else str(data_cfg.paths)
  if data_cfg.get("split_file"):
    from data_pipelines import splits  # pylint: disable=g-import-not-at-top
    ids = splits.read_split_file(data_cfg.split_file)
    return len(ids), f"{data_cfg.split_file} (ids of {storage.join(folder, MANIFEST)})"
  return int(manifest["num_records"]), storage.join(folder, MANIFEST)


def expected_sizes(files: list[str], manifest: dict[str, Any] | None
                   ) -> dict[str, tuple[int, int]]:
  """{shard path: (bytes, records)} from the manifest, for the shards it lists."""
  if not manifest:
    return {}
  entries = {s["file"]: s for s in manifest.get("shards", [])}
  out = {}
  for f in files:
    e = entries.get(storage.basename(f))
    if e is not None and "bytes" in e and "records" in e:
      out[f] = (int(e["bytes"]), int(e["records"]))
  return out


def record_format(files: list[str], manifest: dict[str, Any] | None) -> str:
  """"tfrecord" or "array_record": the manifest's format, else the shard files' suffix."""
  if manifest is not None:
    return record_formats.format_of(manifest)
  return record_formats.format_of_files(files)


def _problem(path: str, expected: tuple[int, int] | None, fmt: str) -> str | None:
  """What is wrong with one shard (None: nothing)."""
  if not storage.exists(path):
    return "missing (listed in the manifest, not on disk)"
  size = storage.size(path)
  if expected is not None:
    want_bytes, want_records = expected
    if size != want_bytes:
      kind = "empty" if size == 0 else "short" if size < want_bytes else "longer than listed"
      return (f"{kind}: {size} bytes on disk, the manifest says {want_bytes} "
              f"({want_records} records)")
  elif size == 0:
    return "empty (0 bytes)"
  try:
    n = record_formats.count_records(path, fmt)
  except CorruptRecordError as e:
    return (f"corrupt at byte offset {e.offset}: {e.reason}" if e.offset >= 0 else
            f"corrupt: {e.reason}")
  if expected is not None and n != expected[1]:
    return f"{n} records on disk, the manifest says {expected[1]}"
  return None


def verify_shards(files: list[str], manifest: dict[str, Any] | None, *, skip: bool = False
                  ) -> tuple[list[str], list[str]]:
  """Checks every shard against the manifest: existence, size, record count (header walk).

  Also: shard files next to the manifest that it does not list (surplus), and a manifest whose
  num_records disagrees with its shards. Strict: raises ShardMismatchError naming the first
  shard and what differs. `skip`: returns (shards to read, ["<path>: <problem>", ...]); the
  bad shards are dropped and logged. A header walk reads 12 bytes per record."""
  expected = expected_sizes(files, manifest)
  fmt = record_format(files, manifest)
  problems: list[tuple[str, str]] = []
  good = []
  for f in files:
    why = _problem(f, expected.get(f), fmt)
    if why is None:
      good.append(f)
    else:
      problems.append((f, why))
  if manifest is not None and files:
    folder = storage.parent(files[0])
    names = {s["file"] for s in manifest.get("shards", [])}
    for extra in storage.glob(storage.join(folder, "*" + record_formats.extension(fmt))):
      if storage.basename(extra) not in names:
        problems.append((extra, "surplus: a shard file the manifest does not list"))
    listed = sum(int(s.get("records", 0)) for s in manifest.get("shards", []))
    if "num_records" in manifest and int(manifest["num_records"]) != listed:
      problems.append((storage.join(folder, MANIFEST), f"num_records {manifest['num_records']} but "
                       f"its shards list {listed} records"))
  if problems and not skip:
    path, why = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise ShardMismatchError(path, why + more + "; re-ingest, fix the manifest, or set "
                             "data.skip_corrupt=True to skip bad shards")
  for path, why in problems:
    logging.warning("skipping shard %s: %s", path, why)
  return good, [f"{p}: {w}" for p, w in problems]


def first_good_record(files: list[str]) -> str | None:
  """Path of the first shard holding a record whose CRCs pass (None: no such record)."""
  for f in files:
    reader = RecordReader(f, skip_corrupt=True)
    try:
      if reader.read_next() is not None:
        return f
    finally:
      reader.close()
  return None
