"""Verify a shard directory against its manifest: every record's CRC, count, bands, shapes."""

from __future__ import annotations

from typing import Any

import numpy as np
from data_pipelines import example_codec
from data_pipelines import sources, storage
from data_pipelines.errors import CorruptRecordError
from data_pipelines import record_formats
from data_pipelines.tfrecord import iter_records


class ManifestMismatchError(ValueError):
  """A shard disagrees with manifest.json (names the shard and, if any, the record offset)."""


class _DenseTally:
  """Masks (class histogram, ignored share) and second dates seen over the records."""

  def __init__(self):
    self.counts: dict[int, int] = {}
    self.mask_records = self.pixels = self.cube2_records = 0
    self.dates2: set[str] = set()

  def add(self, rec: dict[str, Any]) -> None:
    if "mask" in rec:
      values, counts = np.unique(rec["mask"], return_counts=True)
      for v, c in zip(values.tolist(), counts.tolist()):
        self.counts[int(v)] = self.counts.get(int(v), 0) + int(c)
      self.mask_records += 1
      self.pixels += int(rec["mask"].size)
    if "cube2" in rec:
      self.cube2_records += 1
      if rec.get("date2"):
        self.dates2.add(rec["date2"])

  def report(self) -> dict[str, Any]:
    masks = None
    if self.mask_records:
      ignored = sum(c for v, c in self.counts.items() if v < 0)
      masks = {"records": self.mask_records, "pixels": self.pixels,
               "classes": {str(v): c for v, c in sorted(self.counts.items()) if v >= 0},
               "ignored_share": ignored / self.pixels}
    return {"masks": masks,
            "second_dates": {"records": self.cube2_records,
                             "first": min(self.dates2, default=""),
                             "last": max(self.dates2, default="")}}


def _records(path: str, fmt: str):
  """(TFRecord: byte offset | ArrayRecord: record index, bytes) of every verified record."""
  if fmt == record_formats.TFRECORD:
    return iter_records(path)
  return enumerate(record_formats.iter_records(path, fmt))


def inspect_dir(directory: str) -> dict[str, Any]:
  """Reads every record; returns a report. Raises CorruptRecordError / ManifestMismatchError.

  Report: shards [{file, records}], num_records, bands, cube_shapes, dtypes,
  ranges {band: [min, max]} over all records (and dates), labels (manifest label info),
  dates {per_example: sorted date counts T (1 for [C, H, W] cubes), first, last} (first/last
  "" when no record names its dates), masks {records, pixels, classes {value: pixels},
  ignored_share (values < 0)} or None, second_dates {records (with cube2), first, last}.
  """
  manifest = sources.read_manifest(directory)
  fmt = record_formats.format_of(manifest, f"{directory}/manifest.json")
  bands = list(manifest.get("bands", []))
  shapes = {tuple(s) for s in manifest.get("cube_shapes", [])}
  lo = np.full(len(bands), np.inf)
  hi = np.full(len(bands), -np.inf)
  seen_shapes, seen_dtypes, shard_reports = set(), set(), []
  date_counts, all_dates = set(), set()
  dense = _DenseTally()
  for entry in manifest["shards"]:
    path = storage.join(directory, entry["file"])
    if not storage.exists(path):
      raise ManifestMismatchError(f"shard {path} listed in manifest.json is missing")
    n = 0
    for offset, data in _records(str(path), fmt):
      try:
        rec = example_codec.decode_record(
            data, frozenset({"cube", "bands", "key", "date", "dates", "mask", "cube2",
                             "date2"}))
      except example_codec.RecordFormatError as e:
        raise CorruptRecordError(path, offset, f"undecodable record: {e}") from e
      at = f"at byte offset {offset}" if fmt == record_formats.TFRECORD else str(offset)
      where = f"shard {path} record {at} ({rec.get('key', '?')})"
      if rec.get("bands") != bands:
        raise ManifestMismatchError(f"{where}: bands {rec.get('bands')} != manifest {bands}")
      cube = rec["cube"]
      if shapes and tuple(cube.shape) not in shapes:
        raise ManifestMismatchError(f"{where}: cube shape {cube.shape} not in manifest "
                                    f"{sorted(shapes)}")
      seen_shapes.add(tuple(cube.shape))
      date_counts.add(cube.shape[0] if cube.ndim == 4 else 1)
      all_dates.update(d for d in rec.get("dates") or [rec.get("date", "")] if d)
      seen_dtypes.add(cube.dtype.str)
      dense.add(rec)
      flat = np.moveaxis(cube, -3, 0).reshape(len(bands), -1)
      lo = np.minimum(lo, flat.min(axis=1))
      hi = np.maximum(hi, flat.max(axis=1))
      n += 1
    if n != entry["records"]:
      raise ManifestMismatchError(f"shard {path}: manifest says {entry['records']} records, "
                                  f"found {n}")
    shard_reports.append({"file": entry["file"], "records": n})
  listed = {e["file"] for e in manifest["shards"]}
  ext = record_formats.extension(fmt)
  extra = sorted(n for n in storage.listdir(directory) if n.endswith(ext) and n not in listed)
  return {"directory": str(directory), "shards": shard_reports,
          "num_records": sum(s["records"] for s in shard_reports), "bands": bands,
          "cube_shapes": sorted(list(s) for s in seen_shapes), "dtypes": sorted(seen_dtypes),
          "ranges": {b: [float(lo[i]), float(hi[i])] for i, b in enumerate(bands)},
          "labels": manifest.get("labels"),
          "dates": {"per_example": sorted(date_counts), "first": min(all_dates, default=""),
                    "last": max(all_dates, default="")},
          **dense.report(),
          "skipped_at_ingest": len(manifest.get("skipped", [])),
          "unlisted_files": extra}
