"""Shard listing and manifest reading for local paths and object stores (gs://, s3://).

`paths` in the data config may be: a shard directory holding manifest.json (the shard list
comes from the manifest), a glob pattern ("/data/ben/*.tfrecord", "gs://b/ben/data-*"), or a
comma-separated list of shard files. Remote paths go through `etils.epath` (a tfds dependency).
"""

from __future__ import annotations

import json
from typing import Any

from etils import epath

from data_pipelines.shard_writer import MANIFEST


def _is_glob(s: str) -> bool:
  return any(c in s for c in "*?[")


def read_manifest(directory: str) -> dict[str, Any]:
  """The manifest.json of a shard directory (FileNotFoundError naming it when absent)."""
  path = epath.Path(directory) / MANIFEST
  if not path.exists():
    raise FileNotFoundError(f"no {MANIFEST} in {directory}")
  try:
    return json.loads(path.read_text())
  except ValueError as e:
    raise ValueError(f"{path}: invalid JSON ({e})") from e


def list_shards(paths: str) -> tuple[list[str], dict[str, Any] | None]:
  """Resolves `paths` to sorted shard files; also returns the manifest when there is one."""
  if not paths:
    raise ValueError("data.paths is empty: give a shard directory, a glob or a file list")
  specs = [p.strip() for p in str(paths).split(",") if p.strip()]
  if len(specs) == 1 and not _is_glob(specs[0]) and epath.Path(specs[0]).is_dir():
    directory = epath.Path(specs[0])
    manifest = read_manifest(specs[0])
    files = [str(directory / s["file"]) for s in manifest["shards"]]
    missing = [f for f in files if not epath.Path(f).exists()]
    if missing:
      raise FileNotFoundError(f"{directory}: shards listed in {MANIFEST} are missing: "
                              f"{missing[:5]}")
    return files, manifest
  files: list[str] = []
  for spec in specs:
    if _is_glob(spec):
      parent, pattern = spec.rsplit("/", 1) if "/" in spec else (".", spec)
      hits = sorted(str(p) for p in epath.Path(parent).glob(pattern))
      if not hits:
        raise FileNotFoundError(f"no shard matches {spec!r}")
      files.extend(hits)
    else:
      if not epath.Path(spec).exists():
        raise FileNotFoundError(f"shard {spec!r} does not exist")
      files.append(spec)
  manifest = None
  parents = {str(epath.Path(f).parent) for f in files}
  if len(parents) == 1 and (epath.Path(next(iter(parents))) / MANIFEST).exists():
    manifest = read_manifest(next(iter(parents)))
  return sorted(set(files)), manifest
