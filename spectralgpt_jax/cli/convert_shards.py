"""`python -m spectralgpt_jax convert_shards`: rewrite a shard directory in the other record
format (TFRecord <-> ArrayRecord), every record verified (data_pipelines.convert)."""

from __future__ import annotations

import argparse
import json

from spectralgpt_jax.cli import _failures, _flags, _workdir_lock

HELP = ("rewrite a shard directory as TFRecord or ArrayRecord (CRC-checked reads, read-back "
        "digests compared, manifest written last)")
EXAMPLES = (
    "python -m spectralgpt_jax convert_shards --input runs/ben_shards "
    "--out runs/ben_array_record --format array_record",
    "python -m spectralgpt_jax convert_shards --input runs/ben_array_record "
    "--out runs/ben_tfrecord --format tfrecord",
)


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("convert_shards", HELP, EXAMPLES)
  p.add_argument("--input", required=True, help="shard directory holding manifest.json")
  p.add_argument("--out", required=True, help="output shard directory (a new one)")
  p.add_argument("--format", required=True, choices=("tfrecord", "array_record"),
                 help="record format to write")
  p.add_argument("--overwrite", action="store_true",
                 help="replace a dataset already in --out (default: refuse)")
  return p


@_failures.command("convert_shards")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  from data_pipelines import convert  # pylint: disable=g-import-not-at-top
  with _workdir_lock.held(args.out, "convert_shards"):  # one writer per shard directory
    manifest = convert.convert_shards(args.input, args.out, args.format,
                                      overwrite=args.overwrite)
  print(json.dumps({"out": args.out, "format": manifest["format"],
                    "records": manifest["num_records"],
                    "shards": [s["records"] for s in manifest["shards"]]}))
  return 0
