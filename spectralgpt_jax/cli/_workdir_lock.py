"""One run per directory: `with held(workdir, "train"):` around everything that writes there.

The lock is `<dir>/.lock`, created atomically (a complete JSON file hard-linked into place,
which fails if one exists): {"host", "pid", "pid_start", "command", "started"}. A second
command on the same directory stops at once with `WorkdirLockedError`, one line naming the
directory and the holder. Released on exit, exceptions included.

A holder that died (kill -9, a crash, a lost machine) must not block the resume, so a lock is
stale, and replaced, when
  * it names this host and its pid is no longer running (or runs another program: the pid's
    start time differs from the recorded one), or
  * it names another host and was not refreshed for `STALE_AFTER_S` (10 min): the holder
    touches the file every `HEARTBEAT_S` (60 s) while it runs.
Two hosts sharing a directory (NFS) must have different host names; a clock skew larger than
STALE_AFTER_S between them would make a live holder look stale.

A workdir in an object store (gs://, s3://) holds the same record as an object created only if
absent (GCS generation precondition, S3 If-None-Match: data_pipelines.storage.create_new); the
heartbeat rewrites it with a fresh "refreshed" time, which the staleness check reads instead
of a file's mtime.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from typing import Any, Iterator

from data_pipelines import storage

LOCK_NAME = ".lock"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0


class WorkdirLockedError(OSError):
  """Another live command holds the directory's lock."""


def _pid_start(pid: int) -> str | None:
  """The start time of `pid` in clock ticks since boot (Linux /proc), None elsewhere."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _running(pid: int, start: str | None) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # someone else's process: it exists
    pass
  now = _pid_start(pid)
  return start is None or now is None or now == start


def _read(path: str) -> dict[str, Any] | None:
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    return None
  except (OSError, ValueError):
    return {}  # unreadable: judged by its age alone


def stale_reason(holder: dict[str, Any], path: str, *, stale_after_s: float = STALE_AFTER_S
                 ) -> str | None:
  """Why the lock `holder` (read from `path`) no longer counts, or None while it is held."""
  if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
    if not _running(holder["pid"], holder.get("pid_start")):
      return f"its process {holder['pid']} is no longer running"
    return None
  try:
    age = time.time() - os.stat(path).st_mtime
  except FileNotFoundError:
    return "it is gone"
  if age > stale_after_s:
    return f"it was last refreshed {age:.0f} s ago (limit {stale_after_s:.0f} s)"
  return None


def describe(holder: dict[str, Any]) -> str:
  return (f"{holder.get('command', '?')} (pid {holder.get('pid', '?')} on host "
          f"{holder.get('host', '?')}, since {holder.get('started', '?')})")


def _create(path: str, record: dict[str, Any]) -> bool:
  """Writes `record` to `path` only if no file is there; whether it did."""
  tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
  with open(tmp, "w") as f:
    json.dump(record, f)
  try:
    os.link(tmp, path)
    return True
  except FileExistsError:
    return False
  except OSError:  # a file system without hard links: exclusive create, then write
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "w") as f:
      json.dump(record, f)
    return True
  finally:
    os.unlink(tmp)


def _break(path: str, holder: dict[str, Any]) -> None:
  """Removes the stale lock `holder`, unless another starter replaced it meanwhile."""
  grave = f"{path}.stale.{os.getpid()}"
  try:
    os.rename(path, grave)
  except FileNotFoundError:
    return
  if _read(grave) != holder:  # a fresh lock moved by mistake: put it back
    with contextlib.suppress(FileExistsError):
      os.link(grave, path)
  os.unlink(grave)


def acquire(directory: str, command: str, *, stale_after_s: float = STALE_AFTER_S
            ) -> dict[str, Any]:
  """Takes the lock of `directory` (created if missing); returns the record written.

  Raises WorkdirLockedError naming the holder when a live command holds it."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, LOCK_NAME)
  record = _record(command)
  return _take(directory, command, record, create=lambda: _create(path, record),
               read=lambda: _read(path), remove=lambda holder: _break(path, holder),
               stale=lambda holder: stale_reason(holder, path, stale_after_s=stale_after_s),
               where=f"lock file {path}")


def _record(command: str, **more: Any) -> dict[str, Any]:
  return {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": _pid_start(
      os.getpid()), "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **more}


def _take(directory: str, command: str, record: dict[str, Any], *, create, read, remove, stale,
          where: str) -> dict[str, Any]:
  """Creates the lock (`create()` true when it did), replacing a stale holder's (`read`,
  `stale(holder)` -> why or None, `remove(holder)`); WorkdirLockedError naming a live one."""
  for _ in range(3):
    if create():
      return record
    holder = read()
    if holder is None:
      continue
    why = stale(holder)
    if why is None:
      raise WorkdirLockedError(
          f"{directory} is in use by {describe(holder)}; one run per directory: wait for it "
          f"to finish or stop it, or use another directory ({where})")
    print(f"{command}: replacing the stale lock of {describe(holder)} on {directory}: {why}",
          file=sys.stderr, flush=True)
    remove(holder)
  raise WorkdirLockedError(f"{directory}: could not take the {where} (other commands keep "
                           "starting on it)")


def release(directory: str, record: dict[str, Any]) -> None:
  """Removes the lock if it is still `record` (a lock broken and retaken stays)."""
  path = os.path.join(directory, LOCK_NAME)
  if _read(path) == record:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(path)


@contextlib.contextmanager
def _heartbeat(beat, every_s: float, path: str) -> Iterator[None]:
  """Calls `beat()` every `every_s` seconds in a daemon thread for the block (an OSError of
  one beat is passed over: the next one retries)."""
  stop = threading.Event()

  def loop():
    while not stop.wait(every_s):
      with contextlib.suppress(OSError):
        beat()

  thread = threading.Thread(target=loop, name=f"lock heartbeat {path}", daemon=True)
  thread.start()
  try:
    yield
  finally:
    stop.set()
    thread.join()


@contextlib.contextmanager
def held(directory: str, command: str, *, enabled: bool = True,
         heartbeat_s: float = HEARTBEAT_S, stale_after_s: float = STALE_AFTER_S
         ) -> Iterator[dict[str, Any] | None]:
  """Holds the lock of `directory` for the block, refreshing it every `heartbeat_s`; yields
  the record (None when not `enabled`, e.g. on processes other than 0 of a multi-host run)."""
  if not enabled:
    yield None
    return
  if storage.is_url(directory):
    with _held_url(os.fspath(directory), command, heartbeat_s, stale_after_s) as record:
      yield record
    return
  directory = os.path.abspath(os.fspath(directory))
  record = acquire(directory, command, stale_after_s=stale_after_s)
  path = os.path.join(directory, LOCK_NAME)
  try:
    with _heartbeat(lambda: os.utime(path), heartbeat_s, path):
      yield record
  finally:
    release(directory, record)


# --- Object-store workdirs. ---------------------------------------------------------------------

def _read_url(path: str) -> dict[str, Any] | None:
  try:
    return json.loads(storage.read_bytes(path))
  except FileNotFoundError:
    return None
  except ValueError:
    return {}


def _stale_url(holder: dict[str, Any], stale_after_s: float) -> str | None:
  if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
    if not _running(holder["pid"], holder.get("pid_start")):
      return f"its process {holder['pid']} is no longer running"
    return None
  age = time.time() - float(holder.get("refreshed", 0))
  if age > stale_after_s:
    return f"it was last refreshed {age:.0f} s ago (limit {stale_after_s:.0f} s)"
  return None


@contextlib.contextmanager
def _held_url(directory: str, command: str, heartbeat_s: float, stale_after_s: float
              ) -> Iterator[dict[str, Any]]:
  path = storage.join(directory, LOCK_NAME)
  record = _record(command, refreshed=time.time())
  _take(directory, command, record,
        create=lambda: storage.create_new(path, json.dumps(record).encode()),
        read=lambda: _read_url(path), remove=lambda holder: storage.remove(path),
        stale=lambda holder: _stale_url(holder, stale_after_s), where=f"lock object {path}")
  def refresh():
    if _read_url(path) == record:
      record["refreshed"] = time.time()
      storage.write_bytes(path, json.dumps(record).encode())

  try:
    with _heartbeat(refresh, heartbeat_s, path):
      yield record
  finally:
    with contextlib.suppress(OSError):
      if _read_url(path) == record:
        storage.remove(path)
