"""A loopback HTTP proxy in front of `gcp-storage-emulator` that adds what the emulator leaves
out of the GCS JSON API and tensorstore (orbax's storage) relies on:

  * the `x-goog-generation` / `x-goog-metageneration` headers of media downloads (tensorstore's
    gcs driver reads an object's generation from them: without them every read fails with
    "Malformed StorageGeneration"), and
  * the `ifGenerationMatch` precondition of uploads (412 when the object's generation differs;
    0 means "only if absent"), which the workdir lock and OCDBT manifests use.

Everything else is passed through unchanged. Used by local_object_store.gcs_emulator only.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import threading
import urllib.parse

_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def _generation(upstream: tuple[str, int], bucket: str, name: str) -> tuple[str, str] | None:
  """(generation, metageneration) of an object, None when it does not exist."""
  conn = http.client.HTTPConnection(*upstream, timeout=30)
  try:
    conn.request("GET", f"/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}")
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
      return None
    meta = json.loads(body)
    return str(meta.get("generation", "0")), str(meta.get("metageneration", "1"))
  finally:
    conn.close()


def _object_of(path: str) -> tuple[str, str] | None:
  """(bucket, object name) of a /[download/]storage/v1/b/B/o/NAME path."""
  parts = urllib.parse.urlsplit(path).path.split("/")
  if "b" not in parts or "o" not in parts:
    return None
  b, o = parts.index("b"), parts.index("o")
  if o != b + 2 or len(parts) <= o + 1:
    return None
  return parts[b + 1], urllib.parse.unquote("/".join(parts[o + 1:]))


class _Handler(http.server.BaseHTTPRequestHandler):
  upstream: tuple[str, int] = ("127.0.0.1", 0)
  protocol_version = "HTTP/1.1"
  disable_nagle_algorithm = True   # headers and body go out at once (no 40 ms delayed ACK)
  conditional = threading.Lock()   # a precondition check and its write, one at a time

  def log_message(self, *args) -> None:  # quiet
    del args

  def _precondition_fails(self, query: dict[str, list[str]], body: bytes | None) -> bool:
    want = query.get("ifGenerationMatch", [None])[0]
    if want is None:
      return False
    target = _object_of(self.path)
    bucket = target[0] if target else self.path.split("/b/", 1)[-1].split("/", 1)[0]
    name = query.get("name", [target[1] if target else ""])[0]
    found = re.search(rb'"name"\s*:\s*"([^"]+)"', (body or b"")[:4096])
    if not name and found:   # a multipart upload names the object in its JSON part
      name = json.loads(b'"' + found.group(1) + b'"')
    have = _generation(self.upstream, bucket, name)
    return (have is not None) if want == "0" else (have is None or have[0] != want)

  def _forward(self) -> None:
    self.close_connection = False
    length = int(self.headers.get("Content-Length") or 0)
    body = self.rfile.read(length) if length else None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
    if self.command in ("POST", "PUT") and "ifGenerationMatch" in query:
      with self.conditional:
        if self._precondition_fails(query, body):
          self._reply(412, {"Content-Type": "application/json"},
                      b'{"error": {"code": 412, "message": "Precondition Failed"}}')
          return
        self._pass(query, body)
      return
    self._pass(query, body)

  def _pass(self, query: dict[str, list[str]], body: bytes | None) -> None:
    conn = http.client.HTTPConnection(*self.upstream, timeout=300)
    try:
      headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
      conn.request(self.command, self.path, body=body, headers=headers)
      resp = conn.getresponse()
      data = resp.read()
      out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}
    finally:
      conn.close()
    target = _object_of(self.path)
    if (query.get("alt") == ["media"] and target and resp.status in (200, 206)
        and "x-goog-generation" not in {k.lower() for k in out}):
      gen = _generation(self.upstream, *target)
      if gen is not None:
        out["x-goog-generation"], out["x-goog-metageneration"] = gen
    self._reply(resp.status, out, data)

  def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
    self.send_response(status)
    for k, v in headers.items():
      self.send_header(k, v)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    if self.command != "HEAD":
      self.wfile.write(data)

  do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward


class _Server(http.server.ThreadingHTTPServer):
  daemon_threads = True

  def handle_error(self, request, client_address) -> None:
    del request, client_address  # a client that hung up (killed process): nothing to report


class Proxy:
  """Serves 127.0.0.1:`port` in a daemon thread, forwarding to `upstream_port`."""

  def __init__(self, port: int, upstream_port: int):
    handler = type("Handler", (_Handler,), {"upstream": ("127.0.0.1", upstream_port),
                                            "conditional": threading.Lock()})
    self.server = _Server(("127.0.0.1", port), handler)
    self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                   name=f"gcs emulator proxy :{port}")
    self.thread.start()

  def stop(self) -> None:
    self.server.shutdown()
    self.server.server_close()
    self.thread.join()
