"""Real object stores on loopback for trying the bucket flow on a laptop, for tests and benches:
a GCS emulator (`gcp-storage-emulator`, behind a small proxy that adds the generation headers
and preconditions it leaves out: gcs_emulator_proxy) and an S3 server (`moto` in server mode),
each a child process on 127.0.0.1 at a free port.

    with gcs_emulator() as store:          # or s3_server()
      env = {**os.environ, **store.env()}   # what a child process needs to reach it
      subprocess.run([... "--workdir", store.url("runs", "exp1")], env=env)

Nothing is set globally: `store.env()` returns the standard client variables (endpoint,
credentials) that fsspec (gcsfs, s3fs) and tensorstore (orbax's storage) read; a caller puts
them into a child's environment or, for in-process use, into `os.environ` itself
(`with store.environ():`). From a shell:

    python -m data_pipelines.local_object_store --gcs   # prints the exports, serves until ^C
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

_START_TIMEOUT_S = 60.0


def free_port() -> int:
  """A TCP port on 127.0.0.1 that nothing listens on right now."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@dataclasses.dataclass
class ObjectStore:
  """A running loopback store: `kind` "gcs" or "s3", `endpoint` http://127.0.0.1:PORT."""
  kind: str
  endpoint: str
  process: subprocess.Popen
  proxy: Any = None   # gcs: the header/precondition proxy in front of the emulator

  @property
  def scheme(self) -> str:
    return "gs" if self.kind == "gcs" else "s3"

  def url(self, bucket: str, *parts: str) -> str:
    """gs://bucket/a/b or s3://bucket/a/b."""
    return "/".join([f"{self.scheme}://{bucket}", *[p.strip("/") for p in parts if p]])

  def env(self) -> dict[str, str]:
    """The client variables that route gcsfs/s3fs/boto and tensorstore to this server."""
    if self.kind == "gcs":
      return {
          "STORAGE_EMULATOR_HOST": self.endpoint,         # gcsfs, google-cloud-storage
          "TENSORSTORE_GCS_HTTP_URL": self.endpoint,      # tensorstore's gcs driver (orbax)
          "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",    # tensorstore: no real credentials
          # gcsfs's default class first asks a gRPC control plane for the bucket type, which an
          # emulator lacks (a 60 s timeout per call); the plain JSON-API class does not ask.
          "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
      }
    return {
        "AWS_ENDPOINT_URL": self.endpoint,              # boto/s3fs and tensorstore's s3 driver
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

  @contextlib.contextmanager
  def environ(self) -> Iterator[None]:
    """`env()` in this process's os.environ for the block, restored afterwards."""
    saved = {k: os.environ.get(k) for k in self.env()}
    os.environ.update(self.env())
    try:
      yield
    finally:
      for k, v in saved.items():
        if v is None:
          os.environ.pop(k, None)
        else:
          os.environ[k] = v

  def make_bucket(self, bucket: str) -> str:
    """Creates `bucket` over the store's HTTP API; returns its URL."""
    if self.kind == "gcs":
      req = urllib.request.Request(f"{self.endpoint}/storage/v1/b?project=local", method="POST",
                                   data=('{"name": "%s"}' % bucket).encode(),
                                   headers={"Content-Type": "application/json"})
    else:
      req = urllib.request.Request(f"{self.endpoint}/{bucket}", method="PUT")
    urllib.request.urlopen(req, timeout=10).close()
    return self.url(bucket)

  def stop(self) -> None:
    """Ends the server (SIGTERM, then SIGKILL after 5 s)."""
    if self.proxy is not None:
      self.proxy.stop()
      self.proxy = None
    if self.process.poll() is None:
      self.process.terminate()
      try:
        self.process.wait(5)
      except subprocess.TimeoutExpired:
        self.process.kill()
        self.process.wait()


def _wait_until_up(proc: subprocess.Popen, probe_url: str, what: str) -> None:
  deadline = time.monotonic() + _START_TIMEOUT_S
  while time.monotonic() < deadline:
    if proc.poll() is not None:
      raise OSError(f"{what} exited at start (code {proc.returncode})")
    try:
      urllib.request.urlopen(probe_url, timeout=2).close()
      return
    except urllib.error.HTTPError:
      return  # it answers
    except OSError:
      time.sleep(0.1)
  proc.kill()
  raise OSError(f"{what} did not answer on {probe_url} within {_START_TIMEOUT_S:.0f} s")


def _bin(name: str) -> str:
  """The console script `name` next to this Python (venvs), else on PATH."""
  here = os.path.join(os.path.dirname(sys.executable), name)
  return here if os.path.exists(here) else name


def start(kind: str, *, quiet: bool = True, server_env: dict[str, str] | None = None
          ) -> ObjectStore:
  """Starts a "gcs" emulator (in memory) or an "s3" server; stop it with `.stop()`.
  `server_env`: more variables for the server process (moto: INITIAL_NO_AUTH_ACTION_COUNT=N
  enforces credentials after N requests)."""
  port = free_port()
  endpoint = f"http://127.0.0.1:{port}"
  out = subprocess.DEVNULL if quiet else None
  if kind == "gcs":
    cmd = [_bin("gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port),
           "--in-memory", "--quiet"]
    probe = f"{endpoint}/storage/v1/b"
  elif kind == "s3":
    cmd = [_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    probe = f"{endpoint}/"
  else:
    raise ValueError(f"unknown object store kind {kind!r} (gcs or s3)")
  try:
    proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(server_env or {})})
  except FileNotFoundError as e:
    raise ImportError(f"{cmd[0]} not found: pip install 'spectralgpt_jax[cloud]' "
                      "(gcp-storage-emulator, moto[server])") from e
  _wait_until_up(proc, probe, f"{kind} server {' '.join(cmd)}")
  if kind == "s3":
    return ObjectStore(kind, endpoint, proc)
  # The emulator omits the generation headers and preconditions tensorstore relies on.
  from data_pipelines import gcs_emulator_proxy  # pylint: disable=g-import-not-at-top
  proxy_port = free_port()
  proxy = gcs_emulator_proxy.Proxy(proxy_port, port)
  return ObjectStore(kind, f"http://127.0.0.1:{proxy_port}", proc, proxy)


@contextlib.contextmanager
def gcs_emulator() -> Iterator[ObjectStore]:
  """A running in-memory GCS emulator for the block."""
  store = start("gcs")
  try:
    yield store
  finally:
    store.stop()


@contextlib.contextmanager
def s3_server(**server_env: str) -> Iterator[ObjectStore]:
  """A running moto S3 server for the block (`server_env`: see `start`)."""
  store = start("s3", server_env=server_env)
  try:
    yield store
  finally:
    store.stop()


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  group = parser.add_mutually_exclusive_group(required=True)
  group.add_argument("--gcs", action="store_true", help="a GCS emulator")
  group.add_argument("--s3", action="store_true", help="an S3 server (moto)")
  parser.add_argument("--bucket", default="local", help="bucket to create (default: local)")
  args = parser.parse_args(argv)
  store = start("gcs" if args.gcs else "s3")
  try:
    store.make_bucket(args.bucket)
    print(f"# {store.kind} server on {store.endpoint}, bucket {store.url(args.bucket)}; "
          "in another shell:")
    for k, v in store.env().items():
      print(f"export {k}={v}")
    print("# serving until Ctrl-C", flush=True)
    store.process.wait()
  except KeyboardInterrupt:
    pass
  finally:
    store.stop()
  return 0


if __name__ == "__main__":
  sys.exit(main())
