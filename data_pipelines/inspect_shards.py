"""Verify a shard directory against its manifest: every record's CRC, count, bands, shapes."""

from __future__ import annotations

from typing import Any

import numpy as np
from etils import epath

from data_pipelines import example_codec
from data_pipelines import sources
from data_pipelines.errors import CorruptRecordError
from data_pipelines.tfrecord import iter_records


class ManifestMismatchError(ValueError):
  """A shard disagrees with manifest.json (names the shard and, if any, the record offset)."""


def inspect_dir(directory: str) -> dict[str, Any]:
  """Reads every record; returns a report. Raises CorruptRecordError / ManifestMismatchError.

  Report: shards [{file, records}], num_records, bands, cube_shapes, dtypes,
  ranges {band: [min, max]} over all records (and dates), labels (manifest label info),
  dates {per_example: sorted date counts T (1 for [C, H, W] cubes), first, last} (first/last
  "" when no record names its dates).
  """
  manifest = sources.read_manifest(directory)
  bands = list(manifest.get("bands", []))
  shapes = {tuple(s) for s in manifest.get("cube_shapes", [])}
  lo = np.full(len(bands), np.inf)
  hi = np.full(len(bands), -np.inf)
  seen_shapes, seen_dtypes, shard_reports = set(), set(), []
  date_counts, all_dates = set(), set()
  for entry in manifest["shards"]:
    path = epath.Path(directory) / entry["file"]
    if not path.exists():
      raise ManifestMismatchError(f"shard {path} listed in manifest.json is missing")
    n = 0
    for offset, data in iter_records(str(path)):
      try:
        rec = example_codec.decode_record(
            data, frozenset({"cube", "bands", "key", "date", "dates"}))
      except example_codec.RecordFormatError as e:
        raise CorruptRecordError(path, offset, f"undecodable record: {e}") from e
      where = f"shard {path} record at byte offset {offset} ({rec.get('key', '?')})"
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
      flat = np.moveaxis(cube, -3, 0).reshape(len(bands), -1)
      lo = np.minimum(lo, flat.min(axis=1))
      hi = np.maximum(hi, flat.max(axis=1))
      n += 1
    if n != entry["records"]:
      raise ManifestMismatchError(f"shard {path}: manifest says {entry['records']} records, "
                                  f"found {n}")
    shard_reports.append({"file": entry["file"], "records": n})
  listed = {e["file"] for e in manifest["shards"]}
  extra = sorted(p.name for p in epath.Path(directory).glob("*.tfrecord") if p.name not in listed)
  return {"directory": str(directory), "shards": shard_reports,
          "num_records": sum(s["records"] for s in shard_reports), "bands": bands,
          "cube_shapes": sorted(list(s) for s in seen_shapes), "dtypes": sorted(seen_dtypes),
          "ranges": {b: [float(lo[i]), float(hi[i])] for i, b in enumerate(bands)},
          "labels": manifest.get("labels"),
          "dates": {"per_example": sorted(date_counts), "first": min(all_dates, default=""),
                    "last": max(all_dates, default="")},
          "skipped_at_ingest": len(manifest.get("skipped", [])),
          "unlisted_files": extra}
