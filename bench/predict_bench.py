"""Whole-scene prediction: throughput (Mpx/s) of `predict` for the base segmenter in float32 and
bfloat16 side by side, and peak memory on a full Sentinel-2 tile (10980 x 10980 x 12).

Throughput: seg_vit_base_patch8_128 with random weights (z-score normalization record), a
synthetic 12-band uint16 scene of --size px square, 128 px windows at stride 64, cosine blend,
batch 8, class map written as a COG; compiled once on a small scene first, then timed (the time
includes reading, normalizing, blending and writing). The bf16 row also gives its agreement with
float32: share of equal class-map pixels and the largest probability difference.

Peak memory: a synthetic 10980 x 10980 x 12 uint16 scene is written once as a tiled, deflate
GeoTIFF (512 px tiles), then, per model (tiny, base), a child process predicts the first band(s)
of rows across its full width at the default batch size (a share of `--distributed`: the blend
rows, the read rows and the batches a whole run holds; the later bands repeat the same work)
and reports its peak RSS
(VmHWM of /proc/self/status: model, compiled program, runtime included). Not ru_maxrss: Linux
carries the parent's resident size into a child's ru_maxrss across fork / exec, so a child of
this process (which just ran the throughput scenes) reported the parent's ~3.2 GB.

  .venv/bin/python bench/predict_bench.py --out BENCHMARKS.md
  .venv/bin/python bench/predict_bench.py --quick          # smoke run: tiny model, seconds
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from timing import QUICK_HELP, append_section, quick_out

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
BASE, TINY = "seg_vit_base_patch8_128", "seg_vit_tiny_patch8_32"
TILE = 10980


def random_model(name: str, image_size: int):
  """inference.SpectralGPT of `name` with random normal weights (std 0.05)."""
  import jax
  from spectralgpt_jax import models
  from spectralgpt_jax.inference.model import SpectralGPT
  from spectralgpt_jax.kernels import select
  from spectralgpt_jax.models.shapes import param_shapes
  record = {"name": name}
  spec = models.build_model(record, runtime=False).spec
  net = models.build_model(record, runtime=False,
                           ops=select.ops_for(jax.local_devices()[:1], max_tokens=spec.num_tokens))
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda a: rng.standard_normal(a.shape, np.float32) * 0.05,
                        param_shapes(net))
  norm = {"mode": "zscore", "mean": [1500.0] * 12, "std": [500.0] * 12, "units": "DN",
          "bands": list(BANDS)}
  meta = {"model": record, "bands": list(BANDS), "normalization": norm,
          "config": {"data": {"image_size": image_size}}}
  return SpectralGPT(net, params, meta, f"random {name}")


def write_scene(path: pathlib.Path, height: int, width: int, rows: int = 512) -> pathlib.Path:
  """A synthetic 12-band uint16 scene written block row by block row (tiled, deflate)."""
  import rasterio
  from rasterio.windows import Window
  profile = dict(driver="GTiff", height=height, width=width, count=12, dtype="uint16",
                 crs="EPSG:32631", transform=rasterio.Affine(10, 0, 600000, 0, -10, 5000040),
                 tiled=True, blockxsize=512, blockysize=512, compress="deflate", ZLEVEL=1,
                 BIGTIFF="IF_SAFER")
  rng = np.random.default_rng(0)
  xx = np.arange(width, dtype=np.float32)
  with rasterio.open(path, "w", **profile) as dst:
    for r0 in range(0, height, rows):
      n = min(rows, height - r0)
      yy = np.arange(r0, r0 + n, dtype=np.float32)[:, None]
      field = 1500 + 600 * np.sin(yy / 37.0) * np.cos(xx / 53.0)
      block = field[None] + rng.integers(0, 300, (12, n, width)).astype(np.float32)
      dst.write(block.astype(np.uint16), window=Window(0, r0, width, n))
    for i, b in enumerate(BANDS):
      dst.set_band_description(i + 1, b)
  return path


def throughput(model_name: str, size: int, window: int, workdir: pathlib.Path) -> dict:
  """Mpx/s per compute dtype on a size x size scene, and bf16's agreement with f32."""
  import rasterio
  from spectralgpt_jax.predict import run
  model = random_model(model_name, window)
  scene = write_scene(workdir / f"scene_{size}.tif", size, size)
  warm = write_scene(workdir / "warm.tif", window, window)
  out = {}
  for dtype in ("float32", "bfloat16"):
    kw = dict(stride=window // 2, batch_size=8, compute_dtype=dtype, progress=False,
              overwrite=True)
    run.predict(model, [str(warm)], str(workdir / f"warm_{dtype}.tif"), **kw)   # compile
    t0 = time.perf_counter()
    run.predict(model, [str(scene)], str(workdir / f"{dtype}.tif"), probabilities=True, **kw)
    seconds = time.perf_counter() - t0
    with rasterio.open(workdir / f"{dtype}.tif") as f:
      classes = f.read(1)
    with rasterio.open(workdir / f"{dtype}_probabilities.tif") as f:
      probs = f.read()
    out[dtype] = {"seconds": seconds, "mpx_per_s": size * size / 1e6 / seconds,
                  "classes": classes, "probs": probs}
    print(f"{model_name} {dtype}: {seconds:.1f} s, {out[dtype]['mpx_per_s']:.4f} Mpx/s",
          flush=True)
  f32, bf16 = out["float32"], out["bfloat16"]
  bf16["agree"] = float((f32["classes"] == bf16["classes"]).mean())
  bf16["max_dprob"] = float(np.abs(f32["probs"] - bf16["probs"]).max())
  return out


def peak_rss_mb() -> float:
  """This process's peak resident size (MB): VmHWM, which starts afresh at exec (ru_maxrss
  where /proc is absent)."""
  try:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def first_bands_rss(model_name: str, window: int, scene: str, bands: int, out: str,
                    tile: int) -> dict:
  """Predicts the first `bands` band(s) of rows of `scene` (tile x tile px) in this process;
  its peak RSS (MB), seconds and windows."""
  from spectralgpt_jax.predict import run, windows
  model = random_model(model_name, window)
  num = windows.RowPlan(tile, tile, window, window // 2).num_bands
  t0 = time.perf_counter()
  try:
    run.predict(model, [scene], out, stride=window // 2, progress=False,   # default batch
                process_index=0, process_count=max(num // bands, 1), wait_s=0)
  except TimeoutError:
    pass   # the other shares never come: only the first band(s) were the point
  return {"peak_rss_mb": peak_rss_mb(),
          "seconds": time.perf_counter() - t0,
          "windows": bands * len(windows.tile_starts(tile, window, window // 2))}


def peak_rss(model_name: str, window: int, scene: pathlib.Path, bands: int,
             workdir: pathlib.Path, tile: int) -> dict:
  proc = subprocess.run([sys.executable, __file__, "--rss-child", model_name, str(window),
                         str(scene), str(bands), str(workdir / f"rss_{model_name}.tif"),
                         str(tile)], capture_output=True, text=True)
  if proc.returncode:
    raise RuntimeError(f"peak memory child for {model_name} failed:\n{proc.stderr[-3000:]}")
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  print(f"{model_name}: {result}", flush=True)
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="markdown file to append results to")
  parser.add_argument("--size", type=int, default=512, help="throughput scene side (px)")
  parser.add_argument("--quick", action="store_true", help=f"{QUICK_HELP} ({TINY}, a 64 px "
                      "scene, peak memory on a 256 px scene)")
  parser.add_argument("--scene", default="",
                      help="the full-tile scene file: reused when it exists, else written there "
                      "(default: a temp file)")
  parser.add_argument("--rss-child", nargs=6, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.rss_child:
    name, window, scene, bands, out, tile = args.rss_child
    print(json.dumps(first_bands_rss(name, int(window), scene, int(bands), out, int(tile))))
    return
  model, window, size, tile_px = BASE, 128, args.size, TILE
  if args.quick:
    model, window, size, tile_px = TINY, 32, 64, 256
    args.out = quick_out("predict_bench")
  with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(tmp)
    tp = throughput(model, size, window, work)
    t0 = time.perf_counter()
    tile = pathlib.Path(args.scene) if args.scene and not args.quick else work / "tile.tif"
    if not tile.exists():
      write_scene(tile, tile_px, tile_px)
    print(f"wrote the {tile_px} px scene in {time.perf_counter() - t0:.0f} s", flush=True)
    if args.quick:   # in this process (no second start): proves the code path only
      rss = {TINY: first_bands_rss(TINY, 32, str(tile), 1, str(work / "rss.tif"), tile_px)}
    else:
      rss = {TINY: peak_rss(TINY, 32, tile, 2, work, tile_px),
             BASE: peak_rss(BASE, 128, tile, 1, work, tile_px)}
  rows = [f"| {model} | {d} | {tp[d]['seconds']:.1f} | **{tp[d]['mpx_per_s']:.4f}** | "
          f"{tp[d]['mpx_per_s'] * 100:.2f} | "
          + (f"{tp[d]['agree'] * 100:.2f}% equal, max dp {tp[d]['max_dprob']:.4f} |"
             if d == "bfloat16" else "reference |") for d in ("float32", "bfloat16")]
  body = (f"Throughput, {size} x {size} x 12 scene, {window} px windows at stride "
          f"{window // 2}:\n\n"
          "| model | compute dtype | s | Mpx/s | km^2/s (10 m px) | class map vs float32 |\n"
          "|---|---|---|---|---|---|\n" + "\n".join(rows) +
          f"\n\nPeak memory, {tile_px} x {tile_px} x 12 uint16 scene (full width):\n\n"
          "| model | window / stride | windows predicted | s | peak RSS (MB) |\n"
          "|---|---|---|---|---|\n"
          + "\n".join(f"| {m} | {32 if m == TINY else 128} / {16 if m == TINY else 64} | "
                      f"{r['windows']} | {r['seconds']:.0f} | **{r['peak_rss_mb']:.0f}** |"
                      for m, r in rss.items()))
  print(body)
  if args.out:
    append_section(args.out, f"predict: whole-scene throughput and peak memory ({model})",
                   "Random weights (the arithmetic of trained ones); times include reading, "
                   "normalizing, blending and writing the COG.", body)


if __name__ == "__main__":
  main()
