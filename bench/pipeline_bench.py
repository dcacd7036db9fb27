"""Input pipeline throughput (cubes/s per core) for TFRecord and ArrayRecord shards, side by
side, and the input demand of the pod presets (how many input cores a host needs).

Measures the full training path on 12x128x128 Sentinel-2 cubes: read shard -> verify (CRCs or
chunk hashes) -> shuffle (TFRecord: shard order + window; ArrayRecord: global per epoch) ->
parse -> select bands -> per-image min-max -> RandomResizedCrop(128, bicubic) -> flip ->
batch, with 0, 1, 2 workers, plus a single-core per-stage breakdown. The pod table turns each
configs/pods preset into per-host images/s (model FLOPs per example from
spectralgpt_jax.models.flops, device peak from spectralgpt_jax.devices, at the stated MFU) and
divides by the measured per-core throughput. Writes a Markdown section (machine, command, date).

  .venv/bin/python bench/pipeline_bench.py --out BENCHMARKS.md
  .venv/bin/python bench/pipeline_bench.py --root gs://BUCKET/bench   # shards in a bucket
  .venv/bin/python bench/pipeline_bench.py --stores local,gcs,s3   # + loopback GCS and S3
  .venv/bin/python bench/pipeline_bench.py --quick     # smoke run: a few records, seconds

--root: where the shards are (ROOT/tfrecord, ROOT/array_record): a local folder, a mounted
bucket or an fsspec URL (written locally, then copied there); default a temp folder.
--stores: also measure from a bucket on a loopback GCS emulator and/or S3 server started for
the run (data_pipelines.local_object_store), in rows "<format> (gcs|s3)" beside the local ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time

import pod_demand  # bench/ is on sys.path when run as a script
from timing import QUICK_HELP, cpu_name, quick_out

FORMATS = ("tfrecord", "array_record")


def _parse(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", default="BENCHMARKS.md")
  p.add_argument("--records", type=int, default=512, help="synthetic records written")
  p.add_argument("--shards", type=int, default=8)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--batches", type=int, default=40, help="timed batches per configuration")
  p.add_argument("--workers", default="0,1,2")
  p.add_argument("--formats", default=",".join(FORMATS))
  p.add_argument("--mfu", type=float, default=0.4, help="assumed MFU of the pod table")
  p.add_argument("--blas-threads", default="1",
                 help="BLAS threads per process (1 = honest per-core numbers, no oversubscription)")
  p.add_argument("--root", "--workdir", dest="root", default=None,
                 help="shard root (local path or URL; default: a temp dir, removed after)")
  p.add_argument("--stores", default="local",
                 help="local,gcs,s3: the root (local) plus buckets on loopback servers")
  p.add_argument("--quick", action="store_true", help=QUICK_HELP)
  args = p.parse_args(argv)
  if args.quick:
    args.records, args.shards, args.batch, args.batches, args.workers = 16, 2, 4, 2, "0"
    args.out = quick_out("pipeline_bench")
  return args


def _clock() -> float:
  """CPU seconds of this process (all its threads): stage costs that other jobs on a shared
  machine do not inflate."""
  return time.process_time()


def _items(n):
  import functools  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines import schema, shard_writer  # pylint: disable=g-import-not-at-top

  def load(i):
    rng = np.random.default_rng(i)
    base = rng.integers(200, 4000, (12, 1, 1))
    cube = (base + rng.integers(0, 800, (12, 128, 128))).astype(np.uint16)
    return {"cube": cube, "bands": list(schema.SPECTRALGPT_BANDS), "key": f"r{i}", "label": i % 10}
  return [shard_writer.Item(f"r{i}", functools.partial(load, i)) for i in range(n)]


def _ensure_shards(root, fmt, n, shards) -> str:
  """ROOT/<fmt> holding n records (written once; a URL root gets a local copy uploaded)."""
  from data_pipelines import shard_writer, storage  # pylint: disable=g-import-not-at-top
  dest = storage.join(root, fmt)
  if storage.exists(storage.join(dest, "manifest.json")):
    return dest
  local = dest if "://" not in root else tempfile.mkdtemp(prefix=f"pipeline_bench_{fmt}_")
  shard_writer.write_shards(_items(n), local, num_shards=shards, record_format=fmt)
  if local != dest:   # shards first, manifest last: a complete copy or none
    storage.upload_tree(local, dest, last=("manifest.json",))
    shutil.rmtree(local, ignore_errors=True)
  return dest


def _config(paths, batch, workers):
  from data_pipelines import config  # pylint: disable=g-import-not-at-top
  c = config.default_data_config()
  c.paths, c.batch_size, c.image_size, c.num_workers = paths, batch, 128, workers
  c.normalization, c.train, c.shuffle_window, c.per_worker_buffer_size = "minmax", True, 256, 4
  return c


def _throughput(paths, batch, workers, batches):
  from data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  it = pipeline.make_pipeline(_config(paths, batch, workers), process_index=0, process_count=1)
  for _ in range(3):      # warm-up: worker start-up, window fill, caches
    next(it)
  startup = time.perf_counter() - t0
  t1, c1 = time.perf_counter(), time.process_time()
  for _ in range(batches):
    b = next(it)
  dt_s, cpu_s = time.perf_counter() - t1, time.process_time() - c1
  assert b["cube"].shape == (batch, 12, 128, 128)
  it.close()
  return batches * batch / dt_s, batches * batch / cpu_s, startup


def _read_costs(paths_of):
  """Microseconds per record to read + verify it: TFRecord in file order, ArrayRecord in a
  random order over all shards (the shuffle index itself: `_shuffle_index_cost`)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines import record_formats, sources  # pylint: disable=g-import-not-at-top
  out = {}
  for fmt, paths in paths_of.items():
    files, manifest = sources.list_shards(paths)
    t0 = _clock()
    if fmt == "tfrecord":
      done = 0
      for f in files:
        for _ in record_formats.iter_records(f, fmt):
          done += 1
    else:
      src = record_formats.ArrayRecordShards(files, [s["records"] for s in manifest["shards"]])
      done = 0
      for i in np.random.default_rng(0).permutation(len(src)):
        src[int(i)]
        done += 1
    out[fmt] = (_clock() - t0) / max(done, 1) * 1e6
  return out


def _stages(paths, n=512, batch=64):
  """Steady-state single-process cost per image of the stages after the read (microseconds)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines import example_codec, record_formats, sources, transforms as T  # pylint: disable=g-import-not-at-top
  files, manifest = sources.list_shards(paths)
  fmt = sources.record_format(files, manifest)
  records = []
  for f in files:
    records += list(record_formats.iter_records(f, fmt))
  records = (records * (n // max(len(records), 1) + 1))[:n]
  spec = T.ElementSpec(bands=tuple(example_codec.decode_record(records[0])["bands"]))
  norm, aug = T.Normalize("minmax"), T.RandomAugment(128, hflip_prob=0.5)
  rng = np.random.default_rng(0)
  names = ["parse Example", "select bands", "min-max normalize (-> float32)",
           "random resized crop + flip", "batch (np.stack)"]
  acc = dict.fromkeys(names, 0.0)
  pending = []
  for data in records:
    t1 = _clock()
    rec = example_codec.decode_record(data)
    t2 = _clock()
    el = T.record_to_element(rec, spec)
    t3 = _clock()
    el = norm.map(el)
    t4 = _clock()
    el = aug.random_map(el, rng)
    t5 = _clock()
    pending.append(el["cube"])
    if len(pending) == batch:
      np.stack(pending)
      pending = []
    t6 = _clock()
    for name, a, b in zip(names, (t1, t2, t3, t4, t5), (t2, t3, t4, t5, t6)):
      acc[name] += b - a
  return {k: v / n * 1e6 for k, v in acc.items()}


def _shuffle_index_cost(sizes=(512, 4096, 1 << 20)):
  """Microseconds per index of grain's global shuffle (index_shuffle) at dataset sizes."""
  import grain  # pylint: disable=g-import-not-at-top
  from data_pipelines import order  # pylint: disable=g-import-not-at-top
  out = {}
  for n in sizes:
    ds = order.global_shuffle(grain.MapDataset.range(n), 0, 1, 0, 1)
    k = min(n, 2000)
    t0 = _clock()
    for i in range(k):
      ds[i]
    out[n] = (_clock() - t0) / k * 1e6
  return out


def _shard_of_key(paths) -> dict[str, int]:
  from data_pipelines import example_codec, record_formats, sources  # pylint: disable=g-import-not-at-top
  files, manifest = sources.list_shards(paths)
  fmt = sources.record_format(files, manifest)
  return {example_codec.decode_record(d, frozenset({"key"}))["key"]: k
          for k, f in enumerate(files) for d in record_formats.iter_records(f, fmt)}


def _shuffle_quality(paths, batch, seeds) -> float:
  """p-value of 'a record's position in the epoch is independent of the shard that stores
  it' (chi-square over shard x position-bin counts of one training epoch per seed). A true
  global shuffle passes (p not small); shard-order + window shuffles fail (p ~ 0)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy import stats  # pylint: disable=g-import-not-at-top
  from data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  shard_of = _shard_of_key(paths)
  n, k = len(shard_of), max(shard_of.values()) + 1
  counts = np.zeros((k, k))
  for seed in seeds:
    c = _config(paths, batch, 0)
    c.seed, c.num_epochs, c.with_keys, c.drop_remainder = seed, 1, True, False
    keys = [str(x) for b in pipeline.make_pipeline(c, process_index=0, process_count=1)
            for x in b["key"]]
    np.add.at(counts, ([shard_of[x] for x in keys], np.arange(len(keys)) * k // n), 1)
  return float(stats.chi2_contingency(counts)[1])


def _cpu_busy(seconds=1.0) -> float:
  """Percent of all cores busy over `seconds` (other jobs), from /proc/stat; -1 if unknown."""
  def sample():
    with open("/proc/stat") as f:
      vals = [int(v) for v in f.readline().split()[1:]]
    return sum(vals), vals[3] + vals[4]   # total, idle + iowait
  try:
    t1, i1 = sample()
    time.sleep(seconds)
    t2, i2 = sample()
  except OSError:
    return -1.0
  return 100.0 * (1 - (i2 - i1) / max(t2 - t1, 1))


def _machine():
  return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main(argv=None) -> int:
  args = _parse(sys.argv[1:] if argv is None else argv)
  for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = args.blas_threads    # before numpy loads; inherited by spawned workers
  from data_pipelines import absl_flags  # pylint: disable=g-import-not-at-top
  absl_flags.ensure_parsed()
  root = args.root or tempfile.mkdtemp(prefix="pipeline_bench_")
  try:
    return _run(args, argv, root)
  finally:
    if args.root is None:
      shutil.rmtree(root, ignore_errors=True)


def _measure(args, root):
  """{format: [(workers, images/s, start-up s, busy %)] or an error line}, the shard paths."""
  rows, paths_of = {}, {}
  for fmt in args.formats.split(","):
    paths_of[fmt] = _ensure_shards(root, fmt, args.records, args.shards)
  for w in [int(v) for v in args.workers.split(",")]:
    for fmt, paths in paths_of.items():   # formats alternate: the same machine load for both
      busy = _cpu_busy(0.3 if args.quick else 1.0)
      if isinstance(rows.get(fmt), str):
        continue
      try:
        ips, cpu_ips, startup = _throughput(paths, args.batch, w, args.batches)
      except ValueError as e:   # e.g. ArrayRecord from a URL
        rows[fmt] = str(e).splitlines()[0]
        continue
      rows.setdefault(fmt, []).append((w, ips, cpu_ips, startup, busy))
      print(f"{fmt} workers={w}: {ips:.0f} cubes/s, {cpu_ips:.0f} per CPU-second of the main "
            f"process (start-up + warm-up {startup:.1f} s, machine {busy:.0f}% busy before)",
            flush=True)
  return rows, paths_of


def _measure_stores(args, root):
  """_measure of `root`, then of a bucket on each loopback server of --stores."""
  rows, paths_of = _measure(args, root)
  for kind in [k for k in args.stores.split(",") if k not in ("", "local")]:
    from data_pipelines import local_object_store  # pylint: disable=g-import-not-at-top
    start = {"gcs": local_object_store.gcs_emulator, "s3": local_object_store.s3_server}[kind]
    with start() as store, store.environ():
      print(f"{kind}: {store.endpoint}", flush=True)
      found, _ = _measure(args, store.make_bucket("pipeline-bench"))
    rows.update({f"{fmt} ({kind})": r for fmt, r in found.items()})
  return rows, paths_of


def _run(args, argv, root) -> int:
  rows, paths_of = _measure_stores(args, root)
  local = {f: p for f, p in paths_of.items() if isinstance(rows.get(f), list) and "://" not in p}
  reads = _read_costs(local) if local else {}
  stages = _stages(next(iter(local.values())), n=16, batch=4) if args.quick and local else (
      _stages(next(iter(local.values()))) if local else {})
  shuffle = _shuffle_index_cost((512, 4096) if args.quick else (512, 4096, 1 << 20))
  seeds = range(1 if args.quick else 3)
  quality = {f: _shuffle_quality(p, args.batch, seeds) for f, p in local.items()}
  pods = pod_demand.per_host(args.mfu)
  cmd = "python " + " ".join([os.path.relpath(__file__)] + (argv or sys.argv[1:]))
  text = "\n".join(_report(args, cmd, root, rows, reads, stages, shuffle, pods, quality))
  with open(args.out, "a") as f:  # results accumulate, one dated section per run
    f.write("\n" + text + "\n")
  print(text)
  return 0


def _per_core(rows, reads, stages) -> dict:
  """cubes/s per core of each format: the measured single-process (workers=0) run, and the
  sum of the stage costs (read of that format + the shared stages)."""
  out = {}
  for fmt, r in rows.items():
    measured = (next((cpu for w, _, cpu, _, _ in r if w == 0), None) if isinstance(r, list)
                else None)
    summed = 1e6 / (reads[fmt] + sum(stages.values())) if fmt in reads and stages else None
    out[fmt] = (measured, summed)
  return out


def _report(args, cmd, root, rows, reads, stages, shuffle, pods, quality):
  where = "a temp folder on local disk" if args.root is None else f"`{args.root}`"
  lines = [
      "## Input pipeline throughput: TFRecord vs ArrayRecord (data_pipelines)", "",
      f"- Date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
      f"- Machine: {_machine()}",
      f"- Command: `{cmd}`",
      f"- Data: {args.records} synthetic 12x128x128 uint16 cubes in {args.shards} shards per "
      f"format, in {where}{'' if '://' in root else ' (page cache warm)'}"
      f"{_store_note(args.stores)}, global batch "
      f"{args.batch}, {args.batches} timed "
      "batches after 3 warm-up batches.",
      "- Path timed: read -> verify (TFRecord: both CRC-32C; ArrayRecord: chunk hashes) -> "
      "shuffle (TFRecord: shard order + interleave 4 + window 256; ArrayRecord: global "
      "permutation per epoch) -> parse -> select 12 bands by name -> per-image min-max -> "
      "RandomResizedCrop(128, scale 0.2-1, bicubic, antialias) -> hflip -> batch.",
      f"- BLAS threads per process: {args.blas_threads}. 'busy' = share of all cores used by "
      "other jobs in the second before each measurement (they slow it down).",
      "- cubes/s per core: cubes per CPU-second of the one process of a 0-worker run (all its "
      "threads; what other jobs take does not count). Rows with workers show wall-clock "
      "scaling only, which means something on an idle machine ('busy' near 0%).",
      "", "| format | workers | cubes/s (wall) | cubes/s per core | start-up + 3 warm-up "
      "batches (s) | busy before |", "|---|---|---|---|---|---|"]
  for fmt, r in rows.items():
    if not isinstance(r, list):
      lines.append(f"| {fmt} | - | not measured: {r} | | | |")
      continue
    lines += [f"| {fmt} | {w} | {ips:.0f} | {f'{cpu:.0f}' if w == 0 else '-'} | {s:.1f} | "
              f"{b:.0f}% |" for w, ips, cpu, s, b in r]
  if stages:
    lines += ["", "Single-process CPU cost per cube by stage (microseconds of CPU time):", "",
              "| stage | us/cube |", "|---|---|"]
    lines += [f"| read + verify, {fmt} | {us:.0f} |" for fmt, us in reads.items()]
    lines += [f"| {k} | {v:.0f} |" for k, v in stages.items()]
    for fmt, us in reads.items():
      total = us + sum(stages.values())
      lines.append(f"| **sum, {fmt}** | **{total:.0f}** (= {1e6 / total:.0f} cubes/s per "
                   "core) |")
  lines += ["", "ArrayRecord's global shuffle adds grain's index_shuffle per record (cycle "
            "walking: dear for small datasets, cheap for real ones; the ArrayRecord rows above "
            f"pay it at {args.records} records): " + ", ".join(
                f"{us:.1f} us at {n} records" for n, us in shuffle.items()) + ".", ""]
  if quality:
    lines += ["Shuffle quality: p-value of 'a record's position in a training epoch is "
              "independent of the shard that stores it' (chi-square, shards x position bins, "
              f"{1 if args.quick else 3} seeded epochs; small = positions follow the storage "
              "layout): " + ", ".join(f"{f} {p:.2g}" for f, p in quality.items()) + ".", ""]
  lines += pod_demand.table(args.mfu, pods, _per_core(rows, reads, stages))
  return lines


def _store_note(stores: str) -> str:
  kinds = [k for k in stores.split(",") if k not in ("", "local")]
  names = {"gcs": "a GCS emulator (gcp-storage-emulator)", "s3": "an S3 server (moto)"}
  return "".join(f"; rows '({k})': the same shards in a bucket of {names[k]} on loopback, "
                 "read over HTTP (the server's own CPU is not in 'per core')" for k in kinds)


if __name__ == "__main__":
  sys.exit(main())
