"""Write records into N TFRecord shards with a JSON manifest: atomic, resumable, shuffled.

Items are assigned to shards by a seeded permutation (item perm[i] goes to shard i % N), so
shards are shuffled across each other and differ in size by at most one record (minus any
skipped bad inputs). Each shard is written under a temporary name and `os.replace`d to its
final name only when complete and fsynced; a per-shard progress file (written before the
rename) records its count and statistics. A re-run with the same inputs and settings skips
completed shards and rewrites the rest, producing byte-identical output.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import pathlib
import shutil
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from absl import logging

from data_pipelines import example_codec
from data_pipelines.atomic_io import atomic_write_json
from data_pipelines.errors import BadInputError
from data_pipelines.stats import RunningBandStats
from data_pipelines.tfrecord import TFRecordWriter

MANIFEST = "manifest.json"
FORMAT = "spectralgpt_jax.tfrecord/v1"
_PROGRESS_DIR = ".progress"
_PLAN = ".ingest_plan.json"


@dataclasses.dataclass(frozen=True)
class Item:
  """One input to ingest: a stable key (path or id) and a loader returning a record dict."""
  key: str
  load: Callable[[], dict[str, Any]]


def shard_name(prefix: str, index: int, count: int) -> str:
  return f"{prefix}-{index:05d}-of-{count:05d}.tfrecord"


def _tool_version() -> str:
  try:
    from spectralgpt_jax import __version__  # pylint: disable=g-import-not-at-top
  except ImportError:  # data_pipelines used on its own
    __version__ = "unknown"
  return __version__


class _Consistency:
  """Checks that every record shares band names (and records shapes/dtypes seen)."""

  def __init__(self, bands: Sequence[str] | None = None):
    self.bands = list(bands) if bands else None
    self.shapes: set[tuple[int, ...]] = set()
    self.dtypes: set[str] = set()

  def check(self, key: str, rec: dict[str, Any]) -> None:
    if self.bands is None:
      self.bands = list(rec["bands"])
    elif list(rec["bands"]) != self.bands:
      raise BadInputError(key, "bands", f"band names {list(rec['bands'])} differ from the "
                          f"first record's {self.bands}")
    cube = np.asarray(rec["cube"])
    if cube.size == 0:
      raise BadInputError(key, "cube", "empty cube")
    if cube.dtype.kind == "f" and not np.all(np.isfinite(cube)):
      raise BadInputError(key, "cube", f"{int((~np.isfinite(cube)).sum())} non-finite values")
    self.shapes.add(tuple(cube.shape))
    self.dtypes.add(cube.dtype.str)

  def absorb(self, key: str, info: dict[str, Any]) -> None:
    """Takes over what a completed shard (from its progress file) has seen."""
    if info.get("bands"):
      if self.bands is None:
        self.bands = list(info["bands"])
      elif list(info["bands"]) != self.bands:
        raise BadInputError(key, "bands", f"band names {info['bands']} differ from {self.bands}")
    self.shapes.update(tuple(s) for s in info.get("cube_shapes", []))
    self.dtypes.update(info.get("dtypes", []))


def _plan(items: Sequence[Item], num_shards: int, seed: int, prefix: str) -> dict[str, Any]:
  digest = hashlib.sha256("\n".join(i.key for i in items).encode()).hexdigest()
  return {"num_items": len(items), "items_sha256": digest, "num_shards": num_shards,
          "seed": seed, "prefix": prefix}


def assign_shards(n_items: int, num_shards: int, seed: int) -> list[np.ndarray]:
  """Item indices per shard: a seeded permutation dealt round-robin."""
  perm = np.random.default_rng(seed).permutation(n_items)
  return [perm[k::num_shards] for k in range(num_shards)]


def _write_one_shard(out: pathlib.Path, name: str, items: Sequence[Item], skip_bad: bool,
                     consistency: _Consistency) -> dict[str, Any]:
  tmp = out / f".tmp.{name}.{os.getpid()}"
  stats: RunningBandStats | None = None
  skipped: list[dict[str, str]] = []
  shapes: set[tuple[int, ...]] = set()
  dtypes: set[str] = set()
  try:
    with open(tmp, "wb") as f:
      writer = TFRecordWriter(f)
      for item in items:
        try:
          rec = item.load()
          consistency.check(item.key, rec)
          data = example_codec.encode_record(rec)
        except (BadInputError, example_codec.RecordFormatError) as e:
          if not skip_bad:
            raise
          err = e.to_json() if isinstance(e, BadInputError) else {
              "path": item.key, "field": e.field, "error": str(e)}
          logging.warning("skipping bad input %s: %s", item.key, err["error"])
          skipped.append(err)
          continue
        writer.write(data)
        shapes.add(tuple(np.shape(rec["cube"])))
        dtypes.add(np.asarray(rec["cube"]).dtype.str)
        stats = stats or RunningBandStats(rec["bands"])
        stats.update(rec["cube"])
      f.flush()
      os.fsync(f.fileno())
    info = {"file": name, "records": writer.count, "bytes": writer.offset,
            "bands": list(stats.bands) if stats else None,
            "cube_shapes": sorted(list(x) for x in shapes), "dtypes": sorted(dtypes),
            "stats": stats.to_json() if stats else None, "skipped": skipped}
    atomic_write_json(out / _PROGRESS_DIR / f"{name}.json", info)
    os.replace(tmp, out / name)   # the shard appears only now, complete
    return info
  finally:
    if tmp.exists():
      tmp.unlink()


def _start(out: pathlib.Path, plan: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
  """Prepares `out`; returns the existing manifest if the same ingestion already finished."""
  out.mkdir(parents=True, exist_ok=True)
  for stale in out.glob(".tmp.*"):   # leftovers of an interrupted run
    stale.unlink()
  plan_path, manifest_path = out / _PLAN, out / MANIFEST
  if manifest_path.exists() and not overwrite:
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("plan") == plan:
      return manifest
    raise FileExistsError(f"{out} already holds a different dataset ({MANIFEST}); "
                          "choose another --out or pass overwrite")
  if plan_path.exists() and json.loads(plan_path.read_text()) != plan and not overwrite:
    raise FileExistsError(f"{out} holds an interrupted ingestion with different inputs or "
                          f"settings ({_PLAN}); choose another --out or pass overwrite")
  if overwrite:
    for p in [manifest_path, *out.glob("*.tfrecord")]:
      p.unlink(missing_ok=True)   # --overwrite into a new or half-written folder
    shutil.rmtree(out / _PROGRESS_DIR, ignore_errors=True)
  (out / _PROGRESS_DIR).mkdir(exist_ok=True)
  atomic_write_json(plan_path, plan)
  return None


def write_shards(items: Sequence[Item], out_dir: str | os.PathLike, *, num_shards: int,
                 seed: int = 0, skip_bad: bool = False, prefix: str = "data",
                 bands: Sequence[str] | None = None, overwrite: bool = False,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
  """Ingests `items` into `out_dir`; returns the manifest (also written as manifest.json).

  Args:
    items: inputs with stable keys (the key order is part of the resume plan).
    num_shards: number of shards N (>= 1; shards may be empty if N > len(items)).
    seed: permutation seed (shuffling across shards).
    skip_bad: record bad inputs in the manifest's "skipped" list instead of raising.
    bands: expected band names of every record (default: those of the first record).
    extra: more manifest fields (sources, labels, units, args).
  """
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  out = pathlib.Path(out_dir)
  plan = _plan(items, num_shards, seed, prefix)
  done = _start(out, plan, overwrite)
  if done is not None:
    logging.info("%s: ingestion already complete", out)
    return done
  consistency = _Consistency(bands)
  infos = []
  for k, idx in enumerate(assign_shards(len(items), num_shards, seed)):
    name = shard_name(prefix, k, num_shards)
    progress = out / _PROGRESS_DIR / f"{name}.json"
    if (out / name).exists() and progress.exists():
      info = json.loads(progress.read_text())
      consistency.absorb(name, info)
      logging.info("resume: %s already complete (%d records)", name, info["records"])
    else:
      info = _write_one_shard(out, name, [items[i] for i in idx], skip_bad, consistency)
    infos.append(info)
  manifest = _manifest(infos, consistency, plan, extra or {})
  atomic_write_json(out / MANIFEST, manifest)
  shutil.rmtree(out / _PROGRESS_DIR, ignore_errors=True)
  (out / _PLAN).unlink(missing_ok=True)
  return manifest


def band_wavelengths(bands: Sequence[str], sensor: str) -> list[dict[str, Any]]:
  """Per band of the manifest: {"name", "centre_nm", "fwhm_nm"} from the sensor table
  (data_pipelines.sensors; "sentinel2_l1c" unless the ingest names a `sensor`), the
  wavelengths null for a band the table does not know."""
  from data_pipelines import sensors  # pylint: disable=g-import-not-at-top
  out = []
  for name in bands:
    try:
      b = sensors.sensor(sensor).band(name)
      out.append({"name": name, "centre_nm": b.centre_nm, "fwhm_nm": b.fwhm_nm})
    except ValueError:
      out.append({"name": name, "centre_nm": None, "fwhm_nm": None})
  return out


def _manifest(infos, consistency: _Consistency, plan, extra) -> dict[str, Any]:
  total = None
  for info in infos:
    if info["stats"]:
      s = RunningBandStats.from_json(info["stats"])
      if total is None:
        total = s
      else:
        total.merge(s)
  skipped = [s for info in infos for s in info["skipped"]]
  manifest = {
      "format": FORMAT,
      "tool": {"name": "spectralgpt_jax ingest", "version": _tool_version()},
      "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
      "num_records": sum(i["records"] for i in infos),
      "num_shards": len(infos),
      "shards": [{"file": i["file"], "records": i["records"], "bytes": i["bytes"]} for i in infos],
      "bands": consistency.bands or [],
      "band_wavelengths": band_wavelengths(consistency.bands or [],
                                           extra.get("sensor") or "sentinel2_l1c"),
      "cube_shapes": sorted(list(s) for s in consistency.shapes),
      "dtypes": sorted(consistency.dtypes),
      "units": "DN",
      "stats": total.to_json() if total else None,
      "skipped": skipped,
      "plan": plan,
  }
  manifest.update(extra)
  return manifest
