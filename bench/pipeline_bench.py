"""Input pipeline throughput (images/s) for 12x128x128 Sentinel-2 cubes with 0, 1, 2 workers.

Measures the full training path: read shard -> CRC check -> parse tf.train.Example -> select
bands -> per-image min-max -> RandomResizedCrop(128, bicubic) -> flip -> batch, plus a
single-core per-stage breakdown. Writes a Markdown section (machine, command, date, numbers).

  .venv/bin/python bench/pipeline_bench.py --out BENCHMARKS.md
  .venv/bin/python bench/pipeline_bench.py --quick     # smoke run: a few records, seconds
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

from timing import QUICK_HELP, cpu_name, quick_out  # bench/ is on sys.path when run as a script


def _parse(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", default="BENCHMARKS.md")
  p.add_argument("--records", type=int, default=512, help="synthetic records written")
  p.add_argument("--shards", type=int, default=8)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--batches", type=int, default=40, help="timed batches per configuration")
  p.add_argument("--workers", default="0,1,2")
  p.add_argument("--blas-threads", default="1",
                 help="BLAS threads per process (1 = honest per-core numbers, no oversubscription)")
  p.add_argument("--workdir", default=None, help="where to write shards (default: a temp dir)")
  p.add_argument("--quick", action="store_true", help=QUICK_HELP)
  args = p.parse_args(argv)
  if args.quick:
    args.records, args.shards, args.batch, args.batches, args.workers = 16, 2, 4, 2, "0"
    args.out = quick_out("pipeline_bench")
  return args


def _write_shards(out, n, shards):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines import schema, shard_writer  # pylint: disable=g-import-not-at-top
  import functools  # pylint: disable=g-import-not-at-top

  def load(i):
    rng = np.random.default_rng(i)
    base = rng.integers(200, 4000, (12, 1, 1))
    cube = (base + rng.integers(0, 800, (12, 128, 128))).astype(np.uint16)
    return {"cube": cube, "bands": list(schema.SPECTRALGPT_BANDS), "key": f"r{i}", "label": i % 10}
  items = [shard_writer.Item(f"r{i}", functools.partial(load, i)) for i in range(n)]
  shard_writer.write_shards(items, out, num_shards=shards)


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
  t1 = time.perf_counter()
  for _ in range(batches):
    b = next(it)
  dt_s = time.perf_counter() - t1
  assert b["cube"].shape == (batch, 12, 128, 128)
  it.close()
  return batches * batch / dt_s, startup


def _stages(paths, n=512, batch=64):
  """Steady-state single-process cost per image of each stage (microseconds)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines import example_codec, sources, transforms as T  # pylint: disable=g-import-not-at-top
  from data_pipelines.tfrecord import iter_records  # pylint: disable=g-import-not-at-top
  files, _ = sources.list_shards(paths)
  spec = T.ElementSpec(bands=tuple(example_codec.decode_record(
      next(iter_records(files[0]))[1])["bands"]))
  norm, aug = T.Normalize("minmax"), T.RandomAugment(128, hflip_prob=0.5)
  rng = np.random.default_rng(0)
  names = ["read + CRC", "parse Example", "select bands", "min-max normalize (-> float32)",
           "random resized crop + flip", "batch (np.stack)"]
  acc = dict.fromkeys(names, 0.0)
  done, pending = 0, []
  while done < n:
    for f in files:
      gen = iter_records(f)
      while done < n:
        t0 = time.perf_counter()
        item = next(gen, None)
        if item is None:
          break
        t1 = time.perf_counter()
        rec = example_codec.decode_record(item[1])
        t2 = time.perf_counter()
        el = T.record_to_element(rec, spec)
        t3 = time.perf_counter()
        el = norm.map(el)
        t4 = time.perf_counter()
        el = aug.random_map(el, rng)
        t5 = time.perf_counter()
        pending.append(el["cube"])
        if len(pending) == batch:
          np.stack(pending)
          pending = []
        t6 = time.perf_counter()
        for name, a, b in zip(names, (t0, t1, t2, t3, t4, t5), (t1, t2, t3, t4, t5, t6)):
          acc[name] += b - a
        done += 1
  return {k: v / n * 1e6 for k, v in acc.items()}


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
  workdir = args.workdir or tempfile.mkdtemp(prefix="pipeline_bench_")
  try:
    return _run(args, argv, workdir)
  finally:
    if args.workdir is None:
      shutil.rmtree(workdir, ignore_errors=True)


def _run(args, argv, workdir) -> int:
  paths = os.path.join(workdir, "shards")
  if not os.path.exists(os.path.join(paths, "manifest.json")):
    _write_shards(paths, args.records, args.shards)
  rows = []
  for w in [int(v) for v in args.workers.split(",")]:
    busy = _cpu_busy()
    ips, startup = _throughput(paths, args.batch, w, args.batches)
    rows.append((w, ips, startup, busy))
    print(f"workers={w}: {ips:.0f} images/s (start-up + warm-up {startup:.1f} s, machine "
          f"{busy:.0f}% busy before)", flush=True)
  busy_stages = _cpu_busy()
  stages = _stages(paths, n=16, batch=4) if args.quick else _stages(paths)
  per_image = sum(stages.values())
  cmd = "python " + " ".join([os.path.relpath(__file__)] + (argv or sys.argv[1:]))
  lines = [
      "## Input pipeline throughput (data_pipelines)", "",
      f"- Date: {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}",
      f"- Machine: {_machine()}",
      f"- Command: `{cmd}`",
      f"- Data: {args.records} synthetic 12x128x128 uint16 cubes in {args.shards} TFRecord "
      f"shards (page cache warm), global batch {args.batch}, {args.batches} timed batches "
      "after 3 warm-up batches.",
      "- Path timed: read -> CRC (both) -> parse tf.train.Example -> select 12 bands by name -> "
      "per-image min-max -> RandomResizedCrop(128, scale 0.2-1, bicubic, antialias) -> "
      "hflip -> batch; window shuffle 256, interleave 4 shards.",
      f"- BLAS threads per process: {args.blas_threads}. 'busy' = share of all cores used by "
      "other jobs in the second before each measurement (they slow it down).",
      "", "| workers | images/s | start-up + 3 warm-up batches (s) | busy before |",
      "|---|---|---|---|"]
  lines += [f"| {w} | {ips:.0f} | {s:.1f} | {b:.0f}% |" for w, ips, s, b in rows]
  lines += ["", f"Single-process cost per image by stage (microseconds; {busy_stages:.0f}% busy "
            "before):", "",
            "| stage | us/image |", "|---|---|"]
  lines += [f"| {k} | {v:.0f} |" for k, v in stages.items()]
  lines += [f"| **sum** | **{per_image:.0f}** (= {1e6 / per_image:.0f} images/s per core) |", "",
            "Compare with the mae_vit_base_patch8_128 step's images/s from bench/step_bench.py "
            "on the same machine (BENCHMARKS.md, current figures).", ""]
  text = "\n".join(lines)
  with open(args.out, "a") as f:  # results accumulate, one dated section per run
    f.write("\n" + text + "\n")
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
