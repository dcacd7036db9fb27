"""Split lists as files: one example id per line, matched against record keys.

A line's first whitespace-separated token is the id, so the official lists work as they are:
EuroSAT's "tif/AnnualCrop/AnnualCrop_1.tif 0" and BigEarthNet's bare patch ids. Ids and keys
are compared by base name without extension ("AnnualCrop_1"), which matches tfds'
`filename`, the GeoTIFF and BigEarthNet ingest keys (paths) and the Sen1Floods11 tile keys.
Blank lines and lines starting with '#' are skipped.
"""

from __future__ import annotations

import os

from etils import epath


def example_id(key: str) -> str:
  """'tif/Forest/Forest_7.tif' -> 'Forest_7'; '/data/ben/S2A_..._87_48' -> 'S2A_..._87_48'."""
  key = key.decode() if isinstance(key, bytes) else str(key)
  base = os.path.basename(key.rstrip("/"))
  stem, ext = os.path.splitext(base)
  return stem if ext.lower() in (".tif", ".tiff", ".npy", ".json", ".png", ".jpg") else base


def read_split_file(path: str) -> frozenset[str]:
  """The ids listed in `path` (local or gs://); raises if it names none."""
  p = epath.Path(path)
  if not p.exists():
    raise FileNotFoundError(f"split file {path} not found")
  ids = frozenset(example_id(line.split()[0]) for line in p.read_text().splitlines()
                  if line.strip() and not line.lstrip().startswith("#"))
  if not ids:
    raise ValueError(f"split file {path} lists no ids")
  return ids


class InSplit:
  """Predicate on records (dicts with "key") or tfds examples (with "filename")."""

  def __init__(self, ids: frozenset[str]):
    self.ids = ids

  def __call__(self, rec) -> bool:
    key = rec.get("key", rec.get("filename", ""))
    return example_id(key) in self.ids
