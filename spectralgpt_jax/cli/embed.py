"""`python -m spectralgpt_jax embed`: GeoTIFF(s) -> embeddings (.npy or .parquet).

Inputs: multi-band GeoTIFFs (a file, or every *.tif/*.tiff in a folder), or BigEarthNet-S2
patch folders (one GeoTIFF per band). Bands are matched by name (from --bands or the files'
band descriptions) to the model's list, cubes are resized to the model's image size (bicubic)
and normalized with the stored statistics unless --no_normalize.

Output: .npy of float32 [N, D] (pooled) or [N, L, D] (--tokens), with `<out>.json` listing the
sources in row order; or .parquet with one row per input (source, embedding, crs, bounds, date)
and the same facts in the schema metadata.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any, Iterator

import numpy as np

from spectralgpt_jax.cli import _failures, _flags

HELP = "embed GeoTIFFs or BigEarthNet patch folders with loaded weights into .npy/.parquet"
RENAMED_FLAGS = {"--no-normalize": "--no_normalize", "--batch-size": "--batch_size",
                 "--force": "--overwrite"}
EXAMPLES = (
    "python -m spectralgpt_jax embed --weights runs/demo/run "
    "--input ../shared/data/bigearthnet_s2_example --out emb.npy",
    "python -m spectralgpt_jax embed --weights spectralgpt_tiny.pth --input tiles/ "
    "--bands l2a --out emb.parquet",
)
_TIF = (".tif", ".tiff")


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("embed", __doc__, EXAMPLES)
  p.add_argument("--weights", required=True,
                 help="run directory (orbax checkpoint), official .pth, or our "
                 ".pth/.safetensors export")
  p.add_argument("--input", required=True, nargs="+",
                 help="GeoTIFF files, folders of them, or BigEarthNet patch folders")
  p.add_argument("--out", required=True, help="output .npy or .parquet")
  p.add_argument("--model", default=None,
                 help="variant name overriding the weights' own (default: from the weights)")
  p.add_argument("--bands", default=None,
                 help="band names of the GeoTIFF planes in file order: a set name (eurosat, "
                 "l1c, l2a, spectralgpt) or a comma list; default: the files' descriptions")
  p.add_argument("--sensor", default=None,
                 help="sensor whose bands the inputs hold (data_pipelines.sensors, e.g. "
                 "landsat8_oli, hls_l30, planet_superdove, enmap_like): --bands names its bands, "
                 "else the files' descriptions and wavelength tags; needs --spectral_mode")
  p.add_argument("--spectral_mode", default="s2",
                 choices=("s2", "wavelength", "resample", "zero_fill"),
                 help="how a non-Sentinel-2 band set reaches the model (docs/sensors.md): s2 = "
                 "the 12 SpectralGPT bands (default); wavelength = wavelength-aware positions "
                 "(a table-position model runs with zero residuals, exact on S2); resample = "
                 "onto the S2 bands, uncovered groups dropped; zero_fill = missing bands 0")
  p.add_argument("--no_normalize", action="store_true",
                 help="inputs are already normalized (default: normalize raw DN with the "
                 "model's stored statistics)")
  p.add_argument("--units", choices=("DN", "reflectance"), default="DN",
                 help="what the input values are")
  p.add_argument("--tokens", action="store_true", help="save patch tokens [N, L, D] (.npy only)")
  p.add_argument("--batch_size", type=int, default=8, help="inputs per forward pass")
  p.add_argument("--image_size", type=int, default=None,
                 help="pixels the inputs are resized to and the model runs at (a multiple of the "
                 "patch size; default: the model's own size, as the Python API's image_size=)")
  p.add_argument("--compute_dtype", choices=("float32", "bfloat16"), default="float32",
                 help="matmul precision (bfloat16: bf16 operands, float32 accumulation, norms "
                 "and softmax; faster where the hardware has bf16 units; its cost in "
                 "docs/evaluation.md)")
  p.add_argument("--resampling", default="bicubic", choices=("bilinear", "bicubic", "nearest"),
                 help="resize to the model's image size")
  p.add_argument("--overwrite", action="store_true", help="replace an existing output")
  _flags.add_allow_unverified(p)
  return p


def expand_inputs(inputs: list[str]) -> list[tuple[str, pathlib.Path]]:
  """-> [(kind "tif"|"ben", path)], sorted within each folder."""
  from data_pipelines import bigearthnet  # pylint: disable=g-import-not-at-top
  out: list[tuple[str, pathlib.Path]] = []
  for raw in inputs:
    path = pathlib.Path(raw).expanduser()
    if path.is_file():
      out.append(("tif", path))
    elif path.is_dir():
      patches = bigearthnet.list_bigearthnet_patches(path)
      if patches:
        out.extend(("ben", p) for p in patches)
      else:
        tifs = sorted(p for p in path.rglob("*") if p.suffix.lower() in _TIF and p.is_file())
        if not tifs:
          raise FileNotFoundError(f"{path}: no GeoTIFFs or BigEarthNet patch folders found")
        out.extend(("tif", p) for p in tifs)
    else:
      raise FileNotFoundError(f"{path}: no such file or folder")
  return out


def read_inputs(items, bands: str | None, size: int, method: str
                ) -> Iterator[tuple[np.ndarray, tuple[str, ...], dict[str, Any]]]:
  """Yields (cube [C, size, size] float32, band names, info) per input, resized by the same
  function as the Python API (`inference.fit_to_size`), so both embed a file identically."""
  from data_pipelines import readers  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.inference import fit_to_size  # pylint: disable=g-import-not-at-top
  for kind, path in items:
    if kind == "ben":
      cube, meta = readers.read_bigearthnet_patch(path)
    else:
      cube, meta = readers.read_geotiff(path, bands=bands)
    info = {"source": str(path), "crs": meta.get("crs", ""), "bounds": meta.get("bounds"),
            "date": meta.get("date", "")}
    yield fit_to_size(cube, size, method), tuple(meta["bands"]), info


def _write_npy(out: pathlib.Path, emb: np.ndarray, infos: list[dict], facts: dict) -> None:
  np.save(out, emb)
  sidecar = out.with_name(out.name + ".json")
  sidecar.write_text(json.dumps({**facts, "rows": infos}, indent=2) + "\n")


def _write_parquet(out: pathlib.Path, emb: np.ndarray, infos: list[dict], facts: dict) -> None:
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  d = emb.shape[1]
  values = pa.array(emb.reshape(-1).astype(np.float32), pa.float32())
  table = pa.table({
      "source": pa.array([i["source"] for i in infos], pa.string()),
      "embedding": pa.FixedSizeListArray.from_arrays(values, d),
      "crs": pa.array([i["crs"] or "" for i in infos], pa.string()),
      "bounds": pa.array([i["bounds"] for i in infos], pa.list_(pa.float64())),
      "date": pa.array([i["date"] or "" for i in infos], pa.string()),
  })
  table = table.replace_schema_metadata({"spectralgpt_jax": json.dumps(facts)})
  pq.write_table(table, out)


@_failures.command("embed")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  out = pathlib.Path(args.out).expanduser()
  fmt = out.suffix.lower()
  if fmt not in (".npy", ".parquet"):
    raise _flags.UsageError(f"--out must end in .npy or .parquet, got {out}")
  if args.tokens and fmt == ".parquet":
    raise _flags.UsageError("--tokens needs a .npy output")
  if out.exists() and not args.overwrite:
    raise FileExistsError(f"{out} exists")
  from spectralgpt_jax import inference  # pylint: disable=g-import-not-at-top
  items = expand_inputs(args.input)
  with _flags.checkpoint_reads(args):
    model = inference.load(args.weights, model=args.model)
  fn = model.features if args.tokens else model.embed
  chunks, infos, batch, batch_bands = [], [], [], None

  def flush():
    x = np.stack(batch)
    first = len(infos) - len(batch)  # infos holds exactly the inputs read so far
    try:
      chunks.append(fn(x, bands=batch_bands, normalize=not args.no_normalize,
                       units=args.units, batch_size=args.batch_size, image_size=size,
                       compute_dtype=args.compute_dtype))
    except ValueError as e:  # name the file (inputs in a batch share their band names)
      msg = str(e)
      if msg.startswith("non-finite input: ") and "first at example " in msg:
        k = int(msg.split("first at example ")[1].split(",")[0].split(" ")[0])
        raise ValueError(f"{infos[first + k]['source']}: {msg}") from e
      more = f" (and {len(batch) - 1} more input(s) with the same bands)" if len(batch) > 1 \
          else ""
      raise ValueError(f"{infos[first]['source']}{more}: {msg}") from e
    batch.clear()

  size = args.image_size or model.spec.img_size
  if args.sensor or args.spectral_mode != "s2":
    emb, infos = embed_band_set(model, items, args, size)
    return _finish(args, out, fmt, model, emb, infos)
  for cube, names, info in read_inputs(items, args.bands, size, args.resampling):
    if batch and (names != batch_bands or len(batch) >= args.batch_size):
      flush()
    batch.append(cube)
    batch_bands = names
    infos.append(info)
  if batch:
    flush()
  return _finish(args, out, fmt, model, np.concatenate(chunks).astype(np.float32), infos)


def _finish(args, out: pathlib.Path, fmt: str, model, emb: np.ndarray, infos: list) -> int:
  facts = {"weights": str(args.weights), "model": model.meta.get("model"),
           "bands": list(model.bands), "normalized": not args.no_normalize,
           "normalization": model.normalization, "units": args.units,
           "image_size": args.image_size or model.spec.img_size, "kind": "tokens" if args.tokens else "pooled",
           "shape": list(emb.shape), "sensor": args.sensor or "sentinel2",
           "spectral_mode": args.spectral_mode}
  out.parent.mkdir(parents=True, exist_ok=True)
  (_write_npy if fmt == ".npy" else _write_parquet)(out, emb, infos, facts)
  print(f"wrote {out}: {emb.shape[0]} inputs, embeddings {tuple(emb.shape[1:])}")
  return 0


def _sensor_cube(path: pathlib.Path, args) -> tuple[np.ndarray, tuple, dict[str, Any]]:
  """(cube [C, H, W] float32, Bands, info) of one GeoTIFF of `--sensor`'s bands."""
  import rasterio  # pylint: disable=g-import-not-at-top
  from data_pipelines import band_metadata, sensors  # pylint: disable=g-import-not-at-top
  sensor = args.sensor or "sentinel2"
  with rasterio.open(path) as src:
    cube = src.read().astype(np.float32)
    crs = src.crs.to_string() if src.crs else ""
    info = {"source": str(path), "crs": crs, "bounds": [float(v) for v in src.bounds],
            "date": src.tags().get("TIFFTAG_DATETIME", "")}
  bands = (sensors.lookup(sensor, args.bands) if args.bands
           else band_metadata.from_geotiff(str(path), sensor=sensor))
  if len(bands) != cube.shape[0]:
    raise ValueError(f"{path}: {cube.shape[0]} planes but {len(bands)} bands "
                     f"{[b.name for b in bands]}")
  return cube, tuple(bands), info


def embed_band_set(model, items, args, size: int) -> tuple[np.ndarray, list[dict]]:
  """Embeddings [N, D] (or tokens [N, L, D]) of GeoTIFFs of any sensor through
  `--spectral_mode` (evaluation/band_input.py does the same for evaluation); inputs are
  normalised per image and band (min-max) unless --no_normalize."""
  import jax  # pylint: disable=g-import-not-at-top
  from data_pipelines import normalization, spectral_resample  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.evaluation import band_input  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.inference import fit_to_size  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.inference.model import encoder_tokens  # pylint: disable=g-import-not-at-top
  norm = (model.normalization or {}).get("mode", "minmax")
  if not args.no_normalize and norm not in ("minmax", "none"):
    raise _flags.UsageError(f"--spectral_mode {args.spectral_mode}: the model normalises with "
                            f"per-band {norm} statistics of the Sentinel-2 bands; normalise "
                            "the input yourself and pass --no_normalize")
  if any(kind != "tif" for kind, _ in items):
    raise _flags.UsageError("--sensor/--spectral_mode read GeoTIFFs (not BigEarthNet folders)")
  rows, infos, fns = [], [], {}
  enc = band_input.encoder_for(model, band_input.BandInput((), args.spectral_mode))
  for _, path in items:
    cube, bands, info = _sensor_cube(path, args)
    cube = fit_to_size(cube[None], size, args.resampling)
    if not args.no_normalize:
      cube = normalization.minmax(cube)
    prep = spectral_resample.prepare(cube, bands, args.spectral_mode)
    kw = prep.model_kwargs()
    key = repr(sorted(kw.items()))
    if key not in fns:
      fns[key] = jax.jit(lambda p, x, kw=kw: encoder_tokens(enc.model, p, x, **kw))
    tokens = np.asarray(fns[key](enc.params, prep.cube), np.float32)
    rows.append(tokens[0] if args.tokens else tokens[0].mean(axis=0))
    infos.append(info)
  return np.stack(rows), infos
