"""`python -m spectralgpt_jax ingest`: GeoTIFFs (single date or time series) / BigEarthNet
folders / tfds -> TFRecord shards.

Examples: see EXAMPLES (printed by --help).
"""

from __future__ import annotations

import argparse
import json

from spectralgpt_jax.cli import _failures, _flags, _workdir_lock

HELP = ("write Sentinel-2 GeoTIFFs (or per-date GeoTIFF series), BigEarthNet folders, tfds "
        "data, EuroSAT-MS or the dense datasets as TFRecord shards + manifest")
RENAMED_FLAGS = {"--skip-bad": "--skip_bad", "--no-harmonize": "--no_harmonize",
                 "--label-from-dir": "--label_from_dir", "--expect-shape": "--expect_shape",
                 "--expect-crs": "--expect_crs", "--verify-sha256": "--verify_sha256",
                 "--data-dir": "--data_dir", "--force": "--overwrite"}
EXAMPLES = (
    "python -m spectralgpt_jax ingest --source bigearthnet "
    "--input ../shared/data/bigearthnet_s2_example --out runs/ben_shards --shards 2 "
    "--verify_sha256",
    "python -m spectralgpt_jax ingest --source geotiff --input EuroSAT_MS/ --bands eurosat "
    "--label_from_dir --classes eurosat --expect_shape 64,64 --out runs/eurosat --shards 16",
    "python -m spectralgpt_jax ingest --source eurosat --input ../shared/data/eurosat_ms_subset "
    "--out runs/eurosat_subset --shards 2 --verify_sha256",
    "python -m spectralgpt_jax ingest --source tfds --input eurosat/all --split train "
    "--out runs/es --shards 8",
    "python -m spectralgpt_jax ingest --source geotiff_series --input series/ --bands l2a "
    "--dates 4 --out runs/series --shards 4   # series/<example>/<YYYY-MM-DD>.tif",
    "python -m spectralgpt_jax ingest --source eurosat --input ../shared/data/eurosat_ms_subset "
    "--out runs/eurosat_ms --shards 2",
    "python -m spectralgpt_jax ingest --source oscd --input ../shared/data/oscd_s2_subset "
    "--cities aguasclaras,bercy,bordeaux,paris --out runs/oscd_train --shards 2",
    "python -m spectralgpt_jax ingest --source stac --input catalog.json --bands spectralgpt "
    "--patch_size 128 --out runs/stac --shards 8",
    "python -m spectralgpt_jax ingest --source bigearthnet --input ../shared/data/"
    "bigearthnet_s2_example --out runs/ben_beam --shards 2 --runner beam --beam_options "
    "\"--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing\"",
)


def build_parser() -> argparse.ArgumentParser:
  from data_pipelines import datasets  # pylint: disable=g-import-not-at-top
  p = _flags.parser("ingest", HELP, EXAMPLES)
  p.add_argument("--source", required=True, choices=datasets.names(ingestable=True),
                 help="what --input holds (a source of data_pipelines.datasets)")
  p.add_argument("--input", nargs="+", required=True,
                 help="files/dirs/globs (geotiff), folders whose subfolders hold one tif per "
                 "date (geotiff_series), dataset roots or patch folders (bigearthnet), one "
                 "tfds name such as eurosat/all (tfds), or the dataset root (eurosat, oscd, "
                 "sen1floods11_seg, segmunich)")
  p.add_argument("--out", required=True, help="output shard directory")
  p.add_argument("--shards", type=int, required=True, help="number of shards N")
  p.add_argument("--seed", type=int, default=0, help="shuffle seed for the shard assignment")
  p.add_argument("--format", default="tfrecord", choices=("tfrecord", "array_record"),
                 help="record-file format of the shards (array_record: random access, the "
                 "pipeline's global shuffle; docs/data_pipelines.md)")
  p.add_argument("--skip_bad", action="store_true",
                 help="record bad inputs in the manifest instead of failing")
  p.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
  p.add_argument("--workers", type=int, default=None, help="processes writing shards at once "
                 "(default: all cores, one per 256 inputs at most; the shards' bytes do not "
                 "depend on it)")
  p.add_argument("--runner", default="local", choices=("local", "beam"),
                 help="local processes, or an Apache Beam pipeline (pip install "
                 "spectralgpt-jax[beam])")
  p.add_argument("--beam_options", default="--runner=DirectRunner",
                 help="--runner beam: Beam pipeline options as one string, e.g. "
                 "\"--runner=DirectRunner --direct_num_workers=2 "
                 "--direct_running_mode=multi_processing\" (docs/data_pipelines.md: Dataflow, "
                 "Flink, Spark)")
  p.add_argument("--no_harmonize", action="store_true",
                 help="keep the +1000 DN offset of baseline >= 04.00 products in the stored values")
  g = p.add_argument_group("geotiff and geotiff_series")
  g.add_argument("--bands", help="plane names in file order: band set (eurosat, l1c, l2a, "
                 "spectralgpt) or comma list; default: the files' band descriptions")
  g.add_argument("--sensor", default="", help="geotiff: the bands' sensor "
                 "(data_pipelines.sensors, e.g. landsat8_oli, enmap_like): names kept as it "
                 "spells them, the manifest's wavelengths from its table (default Sentinel-2)")
  g.add_argument("--label_from_dir", action="store_true", help="single label = parent folder")
  g.add_argument("--classes", help="class list: 'eurosat' or comma list (default: sorted dirs)")
  g.add_argument("--expect_shape", help="H,W every file must have (default: any)")
  g.add_argument("--expect_crs", help="CRS every file must have, e.g. EPSG:32633 (default: any)")
  g.add_argument("--dates", type=int, default=None,
                 help="geotiff_series: dates every example must have (default: any, as found)")
  b = p.add_argument_group("bigearthnet")
  b.add_argument("--resampling", default="bilinear",
                 help="GDAL method for 20 m / 60 m bands: nearest, bilinear, cubic, lanczos, ...")
  b.add_argument("--labels", default="bigearthnet19", choices=("bigearthnet19", "bigearthnet43"),
                 help="label nomenclature (also tfds bigearthnet)")
  b.add_argument("--verify_sha256", action="store_true",
                 help="check SHA256SUMS.txt (in the root or a parent) before ingesting "
                 "(eurosat checks it whenever the root has one)")
  b.add_argument("--dtype", default=None, choices=("uint16", "float32"),
                 help="stored cube dtype (bigearthnet default uint16, rounded after resampling)")
  p.add_argument("--split_file", default="", help="ingest only the inputs whose example id "
                 "is listed (one per line, e.g. configs/eval/splits/eurosat_subset_test.txt); a "
                 "listed id that no input has is an error")
  t = p.add_argument_group("tfds")
  t.add_argument("--split", default="train", help="tfds split")
  t.add_argument("--data_dir", default=None, help="tfds data_dir (default: tfds's)")
  d = p.add_argument_group("dense datasets (oscd, sen1floods11_seg, segmunich; segmunich "
                           "takes its split, train or test, from --split)")
  d.add_argument("--cities", default="", help="oscd: comma list, or train / test (the "
                 "root's official lists); default all cities")
  d.add_argument("--band_resampling", default="bicubic",
                 choices=("nearest", "bilinear", "bicubic"),
                 help="oscd: upsampling of the 20 m / 60 m bands onto the 10 m grid")
  d.add_argument("--label_convention", default="auto", choices=("auto", "one_two", "zero_one"),
                 help="oscd change maps: 1/2 (shipped tifs), 0/1 (README), or from the values")
  d.add_argument("--channels", default="by_name", choices=("by_name", "official_mean_twice"),
                 help="segmunich: bands by name (gaps from the nearest band), or the official "
                 "10 bands + per-pixel mean twice")
  _add_stac_flags(p)
  return p


def _add_stac_flags(p: argparse.ArgumentParser) -> None:
  """The flags of `--source stac`."""
  s = p.add_argument_group("stac (--input: catalog.json, ItemCollection JSON, STAC-GeoParquet "
                           "or a STAC API .../search URL; --bands, --band_resampling apply)")
  s.add_argument("--patch_size", type=int, default=128, help="tile side in pixels of the "
                 "item's 10 m grid")
  s.add_argument("--stride", type=int, default=None, help="tile step (default: patch_size)")
  s.add_argument("--points", default=None, help="tiles centred on 'lon,lat;lon,lat' or a "
                 "file of lon,lat lines / GeoJSON points, instead of tiling whole items")
  s.add_argument("--stac_search", default=None, help="JSON body of the POST /search, e.g. "
                 "'{\"collections\": [\"sentinel-2-l2a\"], \"bbox\": [...], \"datetime\": ...}'")
  s.add_argument("--max_items", type=int, default=None, help="at most this many items per input")
  s.add_argument("--mask_classes", default=None, help="SCL classes that mask a pixel "
                 "(default 0,3,8,9,10; '' turns masking off)")
  s.add_argument("--max_masked", type=float, default=0.0,
                 help="largest masked fraction a kept tile may have")


def _options(args) -> dict:
  """The ingest options of --source, from the flags (the source's `ingest_options`)."""
  from data_pipelines import datasets  # pylint: disable=g-import-not-at-top
  options = datasets.get(args.source).ingest_options(vars(args))
  if args.sensor and "sensor" not in options:
    raise _flags.UsageError(f"--sensor is for --source geotiff, not {args.source}")
  return options


def _run(args) -> dict:
  """Ingests with the chosen runner; returns the manifest."""
  common = dict(num_shards=args.shards, seed=args.seed, skip_bad=args.skip_bad,
                overwrite=args.overwrite, split_file=args.split_file,
                record_format=args.format, **_options(args))
  if args.runner == "beam":
    from data_pipelines import beam_ingest  # pylint: disable=g-import-not-at-top
    return beam_ingest.ingest_beam(args.source, args.input, args.out,
                                   beam_options=args.beam_options, **common)
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  return ingest.ingest(args.source, args.input, args.out, workers=args.workers, **common)


def _glue_beam_options(argv: list[str]) -> list[str]:
  """`--beam_options "--runner=X ..."` -> `--beam_options=--runner=X ...` (argparse takes a
  value that starts with "--" for a flag)."""
  out, i = [], 0
  while i < len(argv):
    if argv[i] == "--beam_options" and i + 1 < len(argv):
      out.append(f"--beam_options={argv[i + 1]}")
      i += 2
    else:
      out.append(argv[i])
      i += 1
  return out


@_failures.command("ingest")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), _glue_beam_options(argv))
  if args.runner == "beam" and args.workers is not None:
    raise _flags.UsageError("--workers is for --runner local; Beam sizes its workers from "
                            "--beam_options (e.g. --direct_num_workers, --max_num_workers)")
  if args.workers is not None and args.workers < 1:
    raise _flags.UsageError(f"--workers must be >= 1, got {args.workers}")
  try:
    with _workdir_lock.held(args.out, "ingest"):  # one writer per shard directory
      manifest = _run(args)
  except RuntimeError as e:  # a tfds dataset that cannot be opened: bad input, not a bug
    raise OSError(str(e)) from e
  print(json.dumps({"out": args.out, "records": manifest["num_records"],
                    "shards": [s["records"] for s in manifest["shards"]],
                    "bands": manifest["bands"], "cube_shapes": manifest["cube_shapes"],
                    "skipped": len(manifest["skipped"])}))
  return 0
