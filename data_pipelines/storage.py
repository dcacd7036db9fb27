"""Every path or URL the project reads or writes, in one place: local paths (a gcsfuse mount is
one), gs://, s3:// and any other fsspec URL (memory://, http:// for reads, ...).

Operations: `open`, `exists`, `isdir`, `listdir`, `glob`, `size`, `makedirs`, `remove`,
`read_bytes`/`write_bytes`, `atomic_write` (local: temporary file + rename; object store: the
object written whole in one PUT, so a reader sees the old object or the new one), `create_new`
(create-if-absent: O_EXCL locally, generation/If-None-Match preconditions in GCS/S3) and
`upload_tree` (a folder copied with the files that vouch for the others, such as a manifest,
last, so nothing partial looks complete).

Endpoints and credentials come only from the clients' standard configuration:
`STORAGE_EMULATOR_HOST` (gcsfs) / `TENSORSTORE_GCS_HTTP_URL` (tensorstore) for a GCS emulator,
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` and `AWS_*` credentials for S3 (see
local_object_store.ObjectStore.env). With `STORAGE_EMULATOR_HOST` set the plain JSON-API
`gcsfs.core.GCSFileSystem` is used (and registered with fsspec for gs://, so that etils.epath
and orbax use it too): gcsfs's default class first asks a gRPC control plane for the bucket
type, which an emulator does not serve (a 60 s timeout on every call). Child processes get the
same from `GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false` (local_object_store.ObjectStore.env).

Failures of object stores (missing bucket or object, denied access, a server that went away,
also in the middle of a read) become `StorageError` (an OSError; FileNotFoundError and
PermissionError subclasses for the first ones): one line naming the URL and what to do.
"""

from __future__ import annotations

import builtins
import contextlib
import fnmatch
import io
import os
import tempfile
from typing import IO, Any, Callable, Iterator

from data_pipelines import storage_errors


def is_url(path: str | os.PathLike) -> bool:
  """Whether `path` is a URL (scheme://...) rather than a local path."""
  return "://" in os.fspath(path)


def join(base: str | os.PathLike, *parts: str) -> str:
  """`base/part/...` for URLs (always "/") and local paths alike."""
  base = os.fspath(base)
  if not is_url(base):
    return os.path.join(base, *parts)
  return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts if p]])


def basename(path: str | os.PathLike) -> str:
  return os.fspath(path).rstrip("/").rsplit("/", 1)[-1]


def parent(path: str | os.PathLike) -> str:
  path = os.fspath(path).rstrip("/")
  return path.rsplit("/", 1)[0] if is_url(path) else os.path.dirname(path)


# --- Errors (data_pipelines.storage_errors). ---------------------------------------------------

StorageError = storage_errors.StorageError
StorageNotFoundError = storage_errors.StorageNotFoundError
StorageDeniedError = storage_errors.StorageDeniedError


def _bucket_exists(url: str) -> bool | None:
  try:
    fs, path = filesystem(storage_errors.bucket_of(url))
    return bool(fs.exists(path))
  except Exception:  # pylint: disable=broad-except
    return None


def translate(e: BaseException, url: str) -> BaseException:
  """The StorageError for an object-store exception raised on `url` (others unchanged)."""
  return storage_errors.translate(e, url, _bucket_exists)


@contextlib.contextmanager
def errors_named(url: str | os.PathLike) -> Iterator[None]:
  """Within the block, object-store failures on `url` become StorageError."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    new = translate(e, os.fspath(url))
    if new is e:
      raise
    raise new from e


# --- File systems. -------------------------------------------------------------------------------

# Variables that file systems read when created: fsspec caches instances, so an instance made
# under other values (another endpoint, in tests or a long-lived process) must not be reused.
_CLIENT_VARS = ("STORAGE_EMULATOR_HOST", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS")
_clients_made_under: dict[str, tuple] = {}


def _fresh_clients(scheme: str) -> None:
  now = tuple(os.environ.get(v) for v in _CLIENT_VARS)
  if _clients_made_under.setdefault(scheme, now) != now:
    import fsspec  # pylint: disable=g-import-not-at-top
    fsspec.get_filesystem_class(scheme).clear_instance_cache()
    if scheme in ("gs", "gcs"):
      from gcsfs.core import GCSFileSystem  # pylint: disable=g-import-not-at-top
      GCSFileSystem.clear_instance_cache()
    _clients_made_under[scheme] = now


def filesystem(url: str | os.PathLike) -> tuple[Any, str]:
  """(fsspec file system, path inside it) for a URL or local path."""
  import fsspec  # pylint: disable=g-import-not-at-top
  url = os.fspath(url)
  if not is_url(url):
    return fsspec.filesystem("file"), os.path.abspath(url)
  scheme = url.split("://", 1)[0]
  if scheme in ("gs", "gcs", "s3", "s3a"):
    _fresh_clients(scheme)
  if scheme in ("gs", "gcs") and os.environ.get("STORAGE_EMULATOR_HOST"):
    from gcsfs.core import GCSFileSystem  # pylint: disable=g-import-not-at-top
    for name in ("gs", "gcs"):  # also for etils.epath (orbax) in this process
      fsspec.register_implementation(name, GCSFileSystem, clobber=True)
    return GCSFileSystem(), GCSFileSystem._strip_protocol(url)  # pylint: disable=protected-access
  try:
    return fsspec.core.url_to_fs(url)
  except ImportError as e:
    raise ImportError(f"{url}: {e}; pip install 'spectralgpt_jax[cloud]'") from e


class _Guarded(io.RawIOBase):
  """A remote file whose read/write/seek failures name the URL (StorageError)."""

  def __init__(self, f: Any, url: str):
    super().__init__()
    self._f, self._url = f, url

  def _call(self, name: str, *args):
    with errors_named(self._url):
      return getattr(self._f, name)(*args)

  def readable(self) -> bool:
    return self._f.readable()

  def writable(self) -> bool:
    return self._f.writable()

  def seekable(self) -> bool:
    return True

  def read(self, n: int = -1) -> bytes:
    return self._call("read", n)

  def readall(self) -> bytes:
    return self._call("read", -1)

  def readinto(self, b) -> int:
    data = self._call("read", len(b))
    b[:len(data)] = data
    return len(data)

  def write(self, b) -> int:
    return self._call("write", b)

  def seek(self, offset: int, whence: int = 0) -> int:
    return self._call("seek", offset, whence)

  def tell(self) -> int:
    return self._f.tell()

  def flush(self) -> None:
    if not self.closed and not self._f.closed:
      self._call("flush")

  def close(self) -> None:
    if not self.closed:
      try:
        self._call("close")
      finally:
        super().close()


def open(path: str | os.PathLike, mode: str = "rb", **kwargs) -> IO:  # pylint: disable=redefined-builtin
  """Opens a local file (builtins.open) or a remote object (fsspec, binary modes; "w"
  uploads when closed; `kwargs` such as block_size go to fsspec). Text modes of remote files
  wrap the binary one."""
  path = os.fspath(path)
  if not is_url(path):
    return builtins.open(path, mode, **kwargs)
  fs, p = filesystem(path)
  binary = mode.replace("t", "") if "b" in mode else mode.replace("t", "") + "b"
  encoding = kwargs.pop("encoding", "utf-8")
  with errors_named(path):
    f = _Guarded(fs.open(p, binary, **kwargs), path)
  return f if "b" in mode else io.TextIOWrapper(f, encoding=encoding)


def _remote(path: str | os.PathLike, op: str, *args, **kwargs):
  path = os.fspath(path)
  fs, p = filesystem(path)
  with errors_named(path):
    fs.invalidate_cache(p)  # listings change under other writers: never answer from a cache
    return getattr(fs, op)(p, *args, **kwargs)


def exists(path: str | os.PathLike) -> bool:
  return os.path.exists(path) if not is_url(path) else bool(_remote(path, "exists"))


def isdir(path: str | os.PathLike) -> bool:
  return os.path.isdir(path) if not is_url(path) else bool(_remote(path, "isdir"))


def size(path: str | os.PathLike) -> int:
  """Bytes of one file or object."""
  return os.path.getsize(path) if not is_url(path) else int(_remote(path, "size"))


def _with_scheme(url: str, p: str) -> str:
  return f"{url.split('://', 1)[0]}://{p.split('://', 1)[-1].lstrip('/')}"


def listdir(path: str | os.PathLike) -> list[str]:
  """Sorted names (not paths) of the entries of a folder or prefix."""
  path = os.fspath(path)
  if not is_url(path):
    return sorted(os.listdir(path))
  return sorted(basename(p) for p in _remote(path, "ls", detail=False))


def glob(pattern: str | os.PathLike) -> list[str]:
  """Sorted paths (URLs for URLs) matching a glob pattern ("*", "?", "[..]")."""
  pattern = os.fspath(pattern)
  if not is_url(pattern):
    import glob as glob_lib  # pylint: disable=g-import-not-at-top
    return sorted(glob_lib.glob(pattern))
  folder, name = pattern.rsplit("/", 1)
  if any(c in folder for c in "*?["):
    return sorted(_with_scheme(pattern, p) for p in _remote(pattern, "glob"))
  try:
    names = listdir(folder)
  except FileNotFoundError:
    return []
  return sorted(join(folder, n) for n in names if fnmatch.fnmatchcase(n, name))


def makedirs(path: str | os.PathLike) -> None:
  """Creates a local folder (and parents); object stores have no folders: nothing to do."""
  if not is_url(path):
    os.makedirs(path, exist_ok=True)


def remove(path: str | os.PathLike, *, recursive: bool = False, missing_ok: bool = True) -> None:
  """Deletes a file/object (a folder/prefix too with `recursive`)."""
  path = os.fspath(path)
  if not exists(path):
    if missing_ok:
      return
    raise FileNotFoundError(f"{path} does not exist")
  if not is_url(path):
    if os.path.isdir(path) and recursive:
      import shutil  # pylint: disable=g-import-not-at-top
      shutil.rmtree(path)
    else:
      os.remove(path)
    return
  _remote(path, "rm", recursive=recursive)


def read_bytes(path: str | os.PathLike) -> bytes:
  with open(path, "rb") as f:
    return f.read()


def read_text(path: str | os.PathLike) -> str:
  return read_bytes(path).decode("utf-8")


@contextlib.contextmanager
def local_copy(path: str | os.PathLike, *, beside: tuple[str, ...] = ()) -> Iterator[str]:
  """A local path with `path`'s bytes for the block: `path` itself if local, else a download
  into a temporary folder under the same name, with the objects `path + suffix` for each suffix
  in `beside` that exist (a weights file's `.json` manifest), removed afterwards."""
  path = os.fspath(path)
  if not is_url(path):
    yield path
    return
  with tempfile.TemporaryDirectory(prefix="spectralgpt-") as tmp:
    local = os.path.join(tmp, basename(path))
    with builtins.open(local, "wb") as f:
      f.write(read_bytes(path))
    for suffix in beside:
      if exists(path + suffix):
        with builtins.open(local + suffix, "wb") as f:
          f.write(read_bytes(path + suffix))
    yield local


# --- Writes. -----------------------------------------------------------------------------------

def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
  """Calls `write(binary file)` and puts the result at `path` whole or not at all.

  Local: a temporary file beside `path`, fsync, os.replace (the folder is created). URL: the
  bytes are collected in a spooled temporary file and uploaded in one PUT on success."""
  path = os.fspath(path)
  if not is_url(path):
    _atomic_local(path, write)
    return
  with tempfile.SpooledTemporaryFile(max_size=64 << 20) as f:
    write(f)
    f.seek(0)
    data = f.read()
  write_bytes(path, data)


def _atomic_local(path: str, write: Callable[[IO[bytes]], Any]) -> None:
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


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` (atomically: local rename, or one object PUT)."""
  path = os.fspath(path)
  if not is_url(path):
    _atomic_local(path, lambda f: f.write(data))
    return
  _remote(path, "pipe_file", bytes(data))


def create_new(path: str | os.PathLike, data: bytes) -> bool:
  """Writes `data` to `path` only if nothing is there; whether it did (create-if-absent:
  O_EXCL locally, ifGenerationMatch=0 in GCS, If-None-Match: * in S3)."""
  path = os.fspath(path)
  if not is_url(path):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    return True
  try:
    _remote(path, "pipe_file", bytes(data), mode="create")
    return True
  except FileExistsError:
    return False
  except OSError as e:
    if "412" in str(e) or "PreconditionFailed" in str(e):
      return False
    # Clients word a failed precondition differently (gcsfs may report it as a 403 after a
    # retry): whatever the wording, an object that is there now means "not created by us".
    if exists(path):
      return False
    raise


def upload_tree(local_dir: str | os.PathLike, url: str, *, last: tuple[str, ...] = ()) -> None:
  """Copies the files under `local_dir` to `url`, each object in one PUT, the names in `last`
  (manifest, completion marker) after all others so a reader never sees them before the
  data they describe."""
  local_dir = os.fspath(local_dir)
  files = []
  for root, _, names in os.walk(local_dir):
    files += [os.path.relpath(os.path.join(root, n), local_dir) for n in names]
  files.sort(key=lambda r: (r in last, last.index(r) if r in last else 0, r))
  for rel in files:
    with builtins.open(os.path.join(local_dir, rel), "rb") as f:
      write_bytes(join(url, *rel.split(os.sep)), f.read())
