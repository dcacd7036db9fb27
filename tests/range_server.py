"""A static-file HTTP server on 127.0.0.1 with single byte ranges (what GDAL's and fsspec's
HTTP reads ask for), for the tests that read COGs and STAC documents by URL."""

import contextlib
import functools
import http.server
import io
import json
import os
import threading
from typing import Any, Callable, Iterator


class RangeHandler(http.server.SimpleHTTPRequestHandler):
  """Files under `directory` with single byte ranges; every request logged in `server.log`
  as (command, path, range, bytes sent); POST /search answered by `server.search(body)`."""

  def log_message(self, *args):  # tests read `server.log` instead
    pass

  def send_head(self):
    path = self.translate_path(self.path)
    if not os.path.isfile(path):
      self.send_error(404)
      return None
    size = os.path.getsize(path)
    rng = self.headers.get("Range")
    with open(path, "rb") as f:
      if rng:
        lo, hi = rng.split("=")[1].split("-")
        lo, hi = int(lo), min(int(hi) if hi else size - 1, size - 1)
        f.seek(lo)
        data = f.read(hi - lo + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {lo}-{hi}/{size}")
      else:
        data = f.read() if self.command == "GET" else b""
        self.send_response(200)
    self.server.log.append((self.command, self.path, rng, len(data)))
    self.send_header("Content-Length", str(len(data) if rng or self.command == "GET" else size))
    self.send_header("Accept-Ranges", "bytes")
    self.end_headers()
    return io.BytesIO(data)

  def do_POST(self):  # pylint: disable=invalid-name
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    answer = json.dumps(self.server.search(body)).encode()
    self.send_response(200)
    self.send_header("Content-Type", "application/geo+json")
    self.send_header("Content-Length", str(len(answer)))
    self.end_headers()
    self.wfile.write(answer)


def start(directory: str | os.PathLike,
          search: Callable[[dict], Any] | None = None) -> http.server.ThreadingHTTPServer:
  """A running server for `directory` on a free loopback port (stop it with .shutdown());
  its URL is `url(server)`."""
  server = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(directory)))
  server.log, server.search = [], search
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return server


def url(server: http.server.ThreadingHTTPServer) -> str:
  return f"http://127.0.0.1:{server.server_address[1]}"


@contextlib.contextmanager
def serving(directory: str | os.PathLike) -> Iterator[str]:
  """The base URL of a server for `directory` for the block."""
  server = start(directory)
  try:
    yield url(server)
  finally:
    server.shutdown()
