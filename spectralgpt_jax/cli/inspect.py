"""`python -m spectralgpt_jax inspect DIR`: verify a shard directory against its manifest."""

from __future__ import annotations

import argparse
import json

from spectralgpt_jax.cli import _failures, _flags

HELP = "verify every record of a TFRecord shard directory (CRC, counts, bands, shapes)"
EXAMPLES = ("python -m spectralgpt_jax inspect runs/demo/shards",
            "python -m spectralgpt_jax inspect runs/ben_shards --json > report.json")


def build_parser() -> argparse.ArgumentParser:
  parser = _flags.parser("inspect", HELP, EXAMPLES)
  parser.add_argument("directory", help="shard directory containing manifest.json")
  parser.add_argument("--json", action="store_true", help="print the report as JSON")
  return parser


@_failures.command("inspect")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  from data_pipelines import inspect_shards  # pylint: disable=g-import-not-at-top
  report = inspect_shards.inspect_dir(args.directory)
  if args.json:
    print(json.dumps(report, indent=1))
    return 0
  print(f"{report['directory']}: OK, {report['num_records']} records in "
        f"{len(report['shards'])} shards")
  for s in report["shards"]:
    print(f"  {s['file']}: {s['records']} records")
  print(f"bands: {' '.join(report['bands'])}")
  print(f"cube shapes: {report['cube_shapes']}  dtypes: {report['dtypes']}")
  dates = report["dates"]
  span = f", {dates['first']} .. {dates['last']}" if dates["first"] else ""
  print(f"dates per example: {', '.join(map(str, dates['per_example']))}{span}")
  print("value ranges:")
  for band, (lo, hi) in report["ranges"].items():
    print(f"  {band}: [{lo:g}, {hi:g}]")
  labels = report.get("labels") or {}
  if labels.get("type"):
    print(f"labels: {labels['type']}, {labels.get('num_classes')} classes")
  masks = report.get("masks")
  if masks:
    hist = ", ".join(f"{v}: {c}" for v, c in masks["classes"].items())
    print(f"masks: {masks['records']} records, pixels per class {{{hist}}}, "
          f"ignored {100 * masks['ignored_share']:.2f}%")
  second = report.get("second_dates") or {}
  if second.get("records"):
    span = f", {second['first']} .. {second['last']}" if second["first"] else ""
    print(f"second dates (cube2): {second['records']} records{span}")
  if report["skipped_at_ingest"]:
    print(f"inputs skipped at ingestion: {report['skipped_at_ingest']} (see manifest.json)")
  if report["unlisted_files"]:
    print(f"warning: shard files not in the manifest: {report['unlisted_files']}")
  return 0
