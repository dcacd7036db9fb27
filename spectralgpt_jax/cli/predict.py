"""`python -m spectralgpt_jax predict`: apply trained weights to whole scenes -> COG.

Inputs: a multi-band GeoTIFF / COG (bands from --bands or its band descriptions), a folder of
one file per band (BigEarthNet, OSCD, SAFE IMG_DATA names; 20/60 m bands upsampled onto the
10 m grid), or a STAC item .json (path or URL; its band assets read as a band folder); a change detector takes two (--input BEFORE AFTER), the second brought onto the
first's grid. Several scenes for a one-scene model: --out is a folder, one output per scene.

Outputs by kind (docs/inference.md): segmenter / change detector: a class-map COG (nodata 255)
and with --probabilities per-class probabilities; classifier: a coarse COG of class scores and
a CSV; MAE encoder: an embedding COG (one D-vector per window or per token cell). The output
appears only complete (atomic rename); an interrupted run continues from its finished rows.
"""

from __future__ import annotations

import pathlib

from spectralgpt_jax.cli import _distributed, _failures, _flags

HELP = "apply trained weights to whole scenes (GeoTIFF/COG or band folders) -> COG outputs"
EXAMPLES = (
    "python -m spectralgpt_jax predict --weights runs/oscd/oscd/run "
    "--input city/imgs_1 city/imgs_2 --out change.tif",
    "python -m spectralgpt_jax predict --weights runs/seg/run --input S2_scene.tif "
    "--out classes.tif --probabilities",
    "python -m spectralgpt_jax predict --weights runs/pretrain --input scene.tif "
    "--out emb.tif --embedding token",
)


def build_parser():
  p = _flags.parser("predict", __doc__, EXAMPLES)
  p.add_argument("--weights", required=True,
                 help="run directory (orbax checkpoint) or weights file (inference.load)")
  p.add_argument("--input", required=True, nargs="+", help="scene file(s), band folder(s) or STAC item .json file(s) / URL(s)")
  p.add_argument("--out", required=True, help="output .tif (a folder for several scenes); a path or a URL (gs://, s3://, "
                 "...: predicted locally, then uploaded)")
  p.add_argument("--model", default=None, help="variant name overriding the weights' own")
  p.add_argument("--kind", default=None, choices=("seg", "change", "vit", "mae"),
                 help="refuse weights of another kind (default: any)")
  p.add_argument("--bands", default=None,
                 help="band names of a multi-band file's planes in file order (set name or "
                 "comma list); default: the file's band descriptions")
  p.add_argument("--window", type=int, default=0,
                 help="window size in px (default: the run's training size)")
  p.add_argument("--stride", type=int, default=0,
                 help="window step in px (default: half the window for dense models, the "
                 "window for classifiers and encoders)")
  p.add_argument("--blend", choices=("cosine", "average"), default="cosine",
                 help="weights of overlapping windows (docs/inference.md)")
  p.add_argument("--batch_size", type=int, default=0,
                 help="windows per model call (default per platform: 4 on CPU, 8 on GPU/TPU)")
  p.add_argument("--compute_dtype", choices=("float32", "bfloat16"), default=None,
                 help="matmul precision (default per platform: docs/inference.md)")
  p.add_argument("--probabilities", action="store_true",
                 help="also write per-class probabilities (dense models)")
  p.add_argument("--embedding", choices=("tile", "token"), default="tile",
                 help="MAE encoder: one vector per window, or per token cell")
  p.add_argument("--align", choices=("auto", "exact"), default="auto",
                 help="second scene on another grid: auto (pixel-align the same footprint, "
                 "else reproject) or exact (refuse)")
  p.add_argument("--units", choices=("DN", "reflectance"), default="DN",
                 help="what the input values are")
  p.add_argument("--wait_s", type=float, default=7 * 86400,
                 help="--distributed: how long process 0 waits for the others' rows")
  p.add_argument("--no_progress", action="store_true", help="no progress line")
  p.add_argument("--overwrite", action="store_true", help="replace an existing output and "
                 "drop an unfinished run")
  _flags.add_allow_unverified(p)
  _distributed.add_flags(p)
  return p


def _jobs(args, kind: str) -> list[tuple[list[str], str]]:
  """(inputs, out) per output: every scene on its own for one-scene kinds (out: a path or
  a URL)."""
  from data_pipelines import storage  # pylint: disable=g-import-not-at-top
  out = args.out if storage.is_url(args.out) else str(pathlib.Path(args.out).expanduser())
  if kind == "change" or len(args.input) == 1:
    return [(list(args.input), out)]
  stems = [pathlib.Path(i.rstrip("/")).stem for i in args.input]
  if len(set(stems)) != len(stems):
    raise _flags.UsageError(f"scenes with the same name {stems} cannot share --out {out}")
  return [([i], storage.join(out, f"{s}.tif")) for i, s in zip(args.input, stems)]


@_failures.command("predict")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  _distributed.initialize(args)
  import jax  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax import inference, predict  # pylint: disable=g-import-not-at-top
  with _flags.checkpoint_reads(args):
    model = inference.load(args.weights, model=args.model)
  for inputs, out in _jobs(args, model.kind):
    if "://" not in out:
      pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    report = predict.predict(
        model, inputs, out, bands=args.bands, window=args.window, stride=args.stride,
        blend=args.blend, batch_size=args.batch_size, compute_dtype=args.compute_dtype,
        probabilities=args.probabilities, embedding=args.embedding, align=args.align,
        units=args.units, overwrite=args.overwrite, expect_kind=args.kind,
        process_index=jax.process_index(), process_count=jax.process_count(),
        wait_s=args.wait_s, progress=not args.no_progress)
    if jax.process_index() == 0:
      print(f"wrote {', '.join(report['files'])}: {report['windows']} windows in "
            f"{report['seconds']:.1f} s ({report['mpx_per_s']:.3f} Mpx/s)")
  _distributed.shutdown(args)
  return 0
