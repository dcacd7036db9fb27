"""Read throughput of one TFRecord shard directory from local disk, from a GCS emulator and from
a moto S3 server on loopback, side by side in one run (data_pipelines.local_object_store).

  python bench/storage_bench.py [--out BENCHMARKS.md] [--shards DIR]
  python bench/storage_bench.py --quick     # smoke run: a few small shards, seconds

Every record of every shard is read and CRC-checked in order (tfrecord.iter_records, one
reader, one process), as a grain worker does; MB/s and records/s are the best of `--reps`
full passes. The shards are the ones in --shards (a local ingest), else generated: BigEarthNet
sized records (12 bands x 120 x 120 uint16, ~345 KB). Loopback servers measure the client
path (fsspec, HTTP, CRCs) and the emulators themselves, not a network or a real bucket.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from timing import QUICK_HELP, append_section, quick_out  # bench/ is on sys.path as a script

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from data_pipelines import local_object_store, schema, shard_writer, storage  # noqa: E402
from data_pipelines.tfrecord import iter_records  # noqa: E402


def _synthetic_shards(out: str, n: int, shards: int, size: int) -> None:
  bands = list(schema.SPECTRALGPT_BANDS)

  def item(i: int) -> shard_writer.Item:
    def load():
      rng = np.random.default_rng(i)
      return {"cube": rng.integers(0, 10000, (len(bands), size, size), dtype=np.uint16),
              "bands": bands, "key": f"r{i:06d}"}
    return shard_writer.Item(f"r{i:06d}", load)

  shard_writer.write_shards([item(i) for i in range(n)], out, num_shards=shards)


def read_all(directory: str) -> tuple[int, int]:
  """(records, bytes) of one full CRC-checked pass over the directory's shards."""
  manifest_files = [storage.join(directory, n) for n in storage.listdir(directory)
                    if n.endswith(".tfrecord")]
  records = nbytes = 0
  for f in manifest_files:
    for _, data in iter_records(f):
      records += 1
      nbytes += len(data) + 16
  return records, nbytes


def measure(directory: str, reps: int) -> tuple[float, float]:
  """(MB/s, records/s), best of `reps` passes."""
  best = None
  for _ in range(reps):
    start = time.perf_counter()
    records, nbytes = read_all(directory)
    took = time.perf_counter() - start
    best = took if best is None else min(best, took)
  return nbytes / 1e6 / best, records / best


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--out", default=None, help="append the table to this markdown file")
  ap.add_argument("--shards", default=None, help="a local shard directory (default: generated)")
  ap.add_argument("--records", type=int, default=512)
  ap.add_argument("--reps", type=int, default=3)
  ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
  args = ap.parse_args()
  size, num_shards = 120, 8
  if args.quick:
    args.out, args.records, args.reps, size, num_shards = quick_out("storage_bench"), 16, 1, 32, 2
  with tempfile.TemporaryDirectory() as tmp:
    local = args.shards or os.path.join(tmp, "shards")
    if not args.shards:
      _synthetic_shards(local, args.records, num_shards, size)
    records, nbytes = read_all(local)
    rows = [("local disk", *measure(local, args.reps))]
    for kind, server in (("GCS emulator (gcp-storage-emulator)", local_object_store.gcs_emulator),
                         ("S3 server (moto)", local_object_store.s3_server)):
      with server() as store, store.environ():
        url = storage.join(store.make_bucket("bench"), "shards")
        storage.upload_tree(local, url, last=("manifest.json",))
        rows.append((kind, *measure(url, args.reps)))
  table = ["| source | MB/s | records/s | vs local |", "|---|---|---|---|"]
  table += [f"| {name} | {mbs:.1f} | {rps:.0f} | {mbs / rows[0][1]:.3g}x |"
            for name, mbs, rps in rows]
  body = "\n".join(table)
  print(body)
  note = (f"{records} records, {nbytes / 1e6:.1f} MB in {num_shards} shards"
          f"{' (' + args.shards + ')' if args.shards else ''}; one reader, CRC-checked, best of "
          f"{args.reps} passes; servers on loopback ({time.strftime('%Y-%m-%d')}).")
  if args.out:
    append_section(args.out, "Shard read throughput: local disk vs emulated buckets", note, body)


if __name__ == "__main__":
  main()
