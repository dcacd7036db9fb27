"""Write records into N shards with a JSON manifest: atomic, resumable, shuffled.

The record-file format (TFRecord or ArrayRecord) is chosen by name (`data_pipelines.
record_formats`); the records, the shard assignment and the manifest are the same for both, the
manifest's "format" field says which one the directory holds.

Items are assigned to shards by a seeded permutation (item perm[i] goes to shard i % N), so
shards are shuffled across each other and differ in size by at most one record (minus any
skipped bad inputs). Each shard is written under a temporary name and `os.replace`d to its
final name only when complete and fsynced; a per-shard progress file (written before the
rename) records its count and statistics. A re-run with the same inputs and settings skips
completed shards and rewrites the rest, producing byte-identical output.

Shards are independent units of work (`prepare` -> `write_shard` per pending shard ->
`finish`): `write_shards(workers=N)` writes N at once in processes, the Beam pipeline
(data_pipelines.beam_ingest) on its workers; every record is checked against one reference
band list fixed up front, so the bytes do not depend on who wrote which shard.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import pathlib
import shutil
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from absl import logging

from data_pipelines import example_codec, record_formats, sensors, storage
from data_pipelines.atomic_io import atomic_write_json
from data_pipelines.errors import BadInputError
from data_pipelines.stats import RunningBandStats

MANIFEST = "manifest.json"
FORMAT = record_formats.manifest_format(record_formats.TFRECORD)
_PROGRESS_DIR = ".progress"
_PLAN = ".ingest_plan.json"
MIN_ITEMS_PER_PROCESS = 256


@dataclasses.dataclass(frozen=True)
class Item:
  """One input to ingest: a stable key (path or id) and a loader returning a record dict."""
  key: str
  load: Callable[[], dict[str, Any]]


def shard_name(prefix: str, index: int, count: int,
               record_format: str = record_formats.TFRECORD) -> str:
  return f"{prefix}-{index:05d}-of-{count:05d}{record_formats.extension(record_format)}"


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


def ingest_plan(items: Sequence[Item], num_shards: int, seed: int, prefix: str,
          record_format: str = record_formats.TFRECORD) -> dict[str, Any]:
  digest = hashlib.sha256("\n".join(i.key for i in items).encode()).hexdigest()
  plan = {"num_items": len(items), "items_sha256": digest, "num_shards": num_shards,
          "seed": seed, "prefix": prefix}
  if record_format != record_formats.TFRECORD:   # TFRecord plans stay as they were
    plan["record_format"] = record_format
  return plan


def assign_shards(n_items: int, num_shards: int, seed: int) -> list[np.ndarray]:
  """Item indices per shard: a seeded permutation dealt round-robin."""
  perm = np.random.default_rng(seed).permutation(n_items)
  return [perm[k::num_shards] for k in range(num_shards)]


def _write_one_shard(out: pathlib.Path, name: str, items: Sequence[Item], skip_bad: bool,
                     consistency: _Consistency,
                     record_format: str = record_formats.TFRECORD) -> dict[str, Any]:
  tmp = out / f".tmp.{name}.{os.getpid()}"
  stats: RunningBandStats | None = None
  skipped: list[dict[str, str]] = []
  shapes: set[tuple[int, ...]] = set()
  dtypes: set[str] = set()
  writer = record_formats.open_writer(record_format, tmp)
  try:
    try:
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
    except BaseException:
      writer.abort()
      raise
    writer.close()
    info = {"file": name, "records": writer.count, "bytes": tmp.stat().st_size,
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
    shards = [p for f in record_formats.FORMATS for p in out.glob(f"*.{f}")]
    for p in [manifest_path, *shards]:
      p.unlink(missing_ok=True)   # --overwrite into a new or half-written folder
    shutil.rmtree(out / _PROGRESS_DIR, ignore_errors=True)
  (out / _PROGRESS_DIR).mkdir(exist_ok=True)
  atomic_write_json(plan_path, plan)
  return None


def write_shards(items: Sequence[Item], out_dir: str | os.PathLike, *, num_shards: int,
                 seed: int = 0, skip_bad: bool = False, prefix: str = "data",
                 bands: Sequence[str] | None = None, overwrite: bool = False,
                 extra: dict[str, Any] | None = None, workers: int | None = 1,
                 record_format: str = record_formats.TFRECORD) -> dict[str, Any]:
  """Ingests `items` into `out_dir`; returns the manifest (also written as manifest.json).

  Args:
    items: inputs with stable keys (the key order is part of the resume plan).
    num_shards: number of shards N (>= 1; shards may be empty if N > len(items)).
    seed: permutation seed (shuffling across shards).
    skip_bad: record bad inputs in the manifest's "skipped" list instead of raising.
    bands: expected band names of every record (default: those of the first good record in
      shard order).
    extra: more manifest fields (sources, labels, units, args).
    workers: processes writing shards at once (each shard by one process; None:
      `default_workers`); the output is byte-identical for every value.
    record_format: "tfrecord" or "array_record" (data_pipelines.record_formats).
  """
  if storage.is_url(out_dir):
    from data_pipelines import shard_upload  # pylint: disable=g-import-not-at-top
    return shard_upload.write_to_url(items, os.fspath(out_dir), overwrite=overwrite, num_shards=num_shards,
                         seed=seed, skip_bad=skip_bad, prefix=prefix, bands=bands, extra=extra,
                         workers=workers, record_format=record_format)
  job = prepare(items, out_dir, num_shards=num_shards, seed=seed, skip_bad=skip_bad,
                prefix=prefix, bands=bands, overwrite=overwrite, record_format=record_format)
  if job.manifest is not None:
    return job.manifest
  job.finished.update(write_pending(job, workers))
  return finish(job, extra)


@dataclasses.dataclass
class IngestJob:
  """What is left to write: the plan, the shards in order ((name, items) each), the infos of
  shards already complete (resume), the bands every record must have, and the manifest when
  the same ingestion has already finished (then nothing is left)."""
  out: str
  plan: dict[str, Any]
  shards: list[tuple[str, list[Item]]]
  finished: dict[str, dict[str, Any]]
  bands: list[str] | None
  skip_bad: bool
  record_format: str = record_formats.TFRECORD
  manifest: dict[str, Any] | None = None

  def pending(self) -> list[tuple[str, list[Item]]]:
    return [(name, its) for name, its in self.shards if name not in self.finished]


def prepare(items: Sequence[Item], out_dir: str | os.PathLike, *, num_shards: int,
            seed: int = 0, skip_bad: bool = False, prefix: str = "data",
            bands: Sequence[str] | None = None, overwrite: bool = False,
            record_format: str = record_formats.TFRECORD) -> IngestJob:
  """Prepares `out_dir` (resume or overwrite) and plans the shards: the item -> shard plan of
  `assign_shards`, the shards already complete, and the reference bands (given, else those of
  the first good record in shard order, as a one-process run meets them), so shards written
  apart (processes, Beam workers) make the same skip decisions as one process would."""
  record_formats.check_format(record_format)
  if num_shards < 1:
    raise ValueError(f"num_shards must be >= 1, got {num_shards}")
  if storage.is_url(out_dir):   # write_shards stages URL outputs locally before calling this
    raise ValueError(f"{out_dir}: shards written apart (Beam workers) need a folder every "
                     "worker can write (a shared or gcsfuse-mounted path), not a URL")
  out = pathlib.Path(out_dir)
  plan = ingest_plan(items, num_shards, seed, prefix, record_format)
  shards = [(shard_name(prefix, k, num_shards, record_format), [items[i] for i in idx])
            for k, idx in enumerate(assign_shards(len(items), num_shards, seed))]
  job = IngestJob(str(out), plan, shards, {}, list(bands) if bands else None, skip_bad,
                  record_format)
  job.manifest = _start(out, plan, overwrite)
  if job.manifest is not None:
    logging.info("%s: ingestion already complete", out)
    return job
  for name, _ in shards:
    progress = out / _PROGRESS_DIR / f"{name}.json"
    if (out / name).exists() and progress.exists():
      job.finished[name] = json.loads(progress.read_text())
      logging.info("resume: %s already complete (%d records)", name,
                   job.finished[name]["records"])
  if job.bands is None:
    job.bands = _reference_bands(job)
  return job


def _reference_bands(job: IngestJob) -> list[str] | None:
  """Band names of the first good record in shard order (a complete shard's progress file
  says them without loading); bad records before it raise, or are passed over with
  skip_bad, as in `_write_one_shard`."""
  for name, shard_items in job.shards:
    if name in job.finished:
      if job.finished[name].get("bands"):
        return list(job.finished[name]["bands"])
      continue
    for item in shard_items:
      try:
        rec = item.load()
        _Consistency().check(item.key, rec)
        example_codec.encode_record(rec)
      except (BadInputError, example_codec.RecordFormatError):
        if not job.skip_bad:
          raise
        continue
      return list(rec["bands"])
  return None


def write_shard(out: str, name: str, shard_items: Sequence[Item], *, skip_bad: bool,
                bands: Sequence[str] | None,
                record_format: str = record_formats.TFRECORD) -> dict[str, Any]:
  """Writes one shard (atomically, with its progress file) checking every record against
  `bands` (a job's reference); returns its info. The unit of work of the process pool and of
  the Beam pipeline (data_pipelines.beam_ingest)."""
  return _write_one_shard(pathlib.Path(out), name, shard_items, skip_bad, _Consistency(bands),
                          record_format)


def default_workers(num_items: int) -> int:
  """All the cores this process may run on, but at most one process per
  MIN_ITEMS_PER_PROCESS items: starting one (and importing the readers in it) costs about what
  reading a few hundred small images does, so small ingests stay in this process."""
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:   # not Linux
    cores = os.cpu_count() or 1
  return max(1, min(cores, num_items // MIN_ITEMS_PER_PROCESS))


def write_pending(job: IngestJob, workers: int | None = 1) -> dict[str, dict[str, Any]]:
  """Writes the shards not yet complete, `workers` processes at once (None:
  `default_workers`; items must pickle); {name: info}. The first failure stops the rest
  (completed shards stay, so a re-run resumes) and is raised as it was raised in its process."""
  pending = job.pending()
  if workers is None:
    workers = default_workers(sum(len(its) for _, its in pending))
  if workers < 1:
    raise ValueError(f"workers must be >= 1, got {workers}")
  if workers == 1 or len(pending) <= 1:
    return {name: write_shard(job.out, name, its, skip_bad=job.skip_bad, bands=job.bands,
                              record_format=job.record_format)
            for name, its in pending}
  # A fork server: forking this (possibly threaded) process could deadlock a child; the
  # server starts once per process, clean, with the writers imported, then forks cheaply.
  if "forkserver" in multiprocessing.get_all_start_methods():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["data_pipelines.shard_writer", "data_pipelines.ingest"])
  else:
    ctx = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(min(workers, len(pending)), mp_context=ctx) as pool:
    futures = {pool.submit(write_shard, job.out, name, its, skip_bad=job.skip_bad,
                           bands=job.bands, record_format=job.record_format): name
               for name, its in pending}
    try:
      return {futures[f]: f.result()
              for f in concurrent.futures.as_completed(futures)}
    except BaseException:
      for f in futures:
        f.cancel()
      raise


def finish(job: IngestJob, extra: dict[str, Any] | None = None) -> dict[str, Any]:
  """Checks every shard's bands against the job's, writes manifest.json (shards in order)
  and removes the progress files; returns the manifest."""
  out = pathlib.Path(job.out)
  consistency = _Consistency(job.bands)
  infos = [job.finished[name] for name, _ in job.shards]
  for info in infos:
    consistency.absorb(info["file"], info)
  manifest = _manifest(infos, consistency, job.plan, extra or {})
  manifest["format"] = record_formats.manifest_format(job.record_format)
  atomic_write_json(out / MANIFEST, manifest)
  shutil.rmtree(out / _PROGRESS_DIR, ignore_errors=True)
  (out / _PLAN).unlink(missing_ok=True)
  return manifest


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
      "band_wavelengths": sensors.band_wavelengths(consistency.bands or [],
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
