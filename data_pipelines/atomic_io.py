"""Atomic file writes: readers see no file or the whole one (shards' progress and manifests,
evaluation outputs, sweep results). Local paths: a temporary file in the same folder, fsync,
then os.replace; object-store URLs (gs://, s3://): the object written whole in one PUT
(data_pipelines.storage). Standard library at import: any room may use it."""

from __future__ import annotations

import json
import os
from typing import IO, Any, Callable

from data_pipelines import storage


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
  """Calls `write(binary file)` and puts the result at `path` whole or not at all (a local
  folder is created; a local temporary file is removed if `write` raises)."""
  storage.atomic_write(path, write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  storage.write_bytes(path, data)


def atomic_write_json(path: str | os.PathLike, obj: Any, **dumps_kwargs) -> None:
  """JSON (indent 1 unless given) plus a newline, atomically."""
  dumps_kwargs.setdefault("indent", 1)
  atomic_write_bytes(path, (json.dumps(obj, **dumps_kwargs) + "\n").encode())
