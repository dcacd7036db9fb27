"""Atomic file writes: a temporary file in the same folder, fsync, then os.replace, so readers
see no file or the whole one (shards' progress and manifests, evaluation outputs, sweep results).
Standard library only: any room may use it."""

from __future__ import annotations

import json
import os
import tempfile
from typing import IO, Any, Callable


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
  """Calls `write(binary file)` on a temporary file next to `path`, then renames it into place
  (the folder is created; the temporary file is removed if `write` raises)."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix="-" + os.path.basename(path))
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any, **dumps_kwargs) -> None:
  """JSON (indent 1 unless given) plus a newline, atomically."""
  dumps_kwargs.setdefault("indent", 1)
  atomic_write_bytes(path, (json.dumps(obj, **dumps_kwargs) + "\n").encode())
