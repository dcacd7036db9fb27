"""SHA256SUMS.txt checks of the shipped datasets (BigEarthNet patches, OSCD, Sen1Floods11)."""

from __future__ import annotations

import hashlib
import pathlib
import re

from data_pipelines.errors import ChecksumError


def _sha256(path: pathlib.Path) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def verify_sha256sums(folder: str | pathlib.Path, sums_name: str = "SHA256SUMS.txt") -> int:
  """Check every file listed in SHA256SUMS.txt that lies under `folder`.

  The sums file is looked up in `folder` and then its parents (so a single patch folder can
  be checked against the dataset's list). Returns the number of files verified.

  Raises:
    FileNotFoundError if no sums file is found; ChecksumError naming the altered or missing
    file (with expected and actual digests).
  """
  folder = pathlib.Path(folder).resolve()
  sums = next((d / sums_name for d in (folder, *folder.parents) if (d / sums_name).exists()), None)
  if sums is None:
    raise FileNotFoundError(f"no {sums_name} in {folder} or its parents")
  n = 0
  for lineno, line in enumerate(sums.read_text().splitlines(), 1):
    if not line.strip():
      continue
    parts = line.split(None, 1)
    if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
      raise ChecksumError(sums, f"line {lineno}", f"malformed line {line!r}")
    digest, name = parts[0].lower(), parts[1].strip().lstrip("*")
    path = (sums.parent / name).resolve()
    if folder != path and folder not in path.parents:
      continue
    if not path.exists():
      raise ChecksumError(path, "file", f"listed in {sums} but missing")
    actual = _sha256(path)
    if actual != digest:
      raise ChecksumError(path, "sha256", f"file altered: expected {digest}, got {actual}")
    n += 1
  if n == 0:
    raise ChecksumError(folder, "file", f"no file under this folder is listed in {sums}")
  return n
