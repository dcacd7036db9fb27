"""`predict(model, inputs, out, ...)`: a loaded model applied to whole scenes (the `predict`
command's one code path; docs/inference.md).

Dense kinds (segmenter "seg", change detector "change"): overlapping windows blended
(predict/windows.py) -> `<out>` a one-band uint8 class map COG (nodata 255 where any input
pixel is nodata or masked), and with `probabilities` `<stem>_probabilities.tif` (float32 per
class, nodata NaN). Classifier ("vit"): non-overlapping windows -> `<out>` a coarse float32
COG of class scores (one pixel per window) and `<stem>.csv` (one row per window). MAE encoder
("mae"): `<out>` a coarse float32 COG of D bands, one pixel per window (`embedding="tile"`) or
per token cell (`"token"`). Every output: the first scene's CRS, its transform (scaled by the
cell size for the coarse ones) and `<out>.json` with what produced it.

Several processes (`process_count` > 1) split the bands of rows of one scene: process p
predicts the p-th contiguous share (plus the windows above it that reach its first rows), all
write their strips into `<out>.partial/`, and process 0 waits for every strip and writes the
output. An interrupted run continues from its finished strips.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from data_pipelines import storage
from spectralgpt_jax.predict import engine, model_fn, output, prepare, scene, sources, windows
from spectralgpt_jax.predict.progress import Progress

# The compute dtype per platform when none is given (bench/predict_bench.py, BENCHMARKS.md).
DEFAULT_COMPUTE_DTYPE = {"cpu": "float32", "gpu": "bfloat16", "tpu": "bfloat16"}


def default_compute_dtype() -> str:
  return DEFAULT_COMPUTE_DTYPE.get(jax.default_backend(), "float32")


# Windows per model call when none is given. On CPU the base segmenter's call works in 176 MB
# per 128 px window (XLA's temp buffers), so 4 keeps its peak under 2 GB (docs/inference.md,
# Memory).
DEFAULT_BATCH_SIZE = {"cpu": 4, "gpu": 8, "tpu": 8}


def default_batch_size() -> int:
  return DEFAULT_BATCH_SIZE.get(jax.default_backend(), 4)


def _config_data(model) -> dict[str, Any]:
  return dict((model.meta.get("config") or {}).get("data") or {})


def check_kind(model, inputs: Sequence[Any], expect_kind: str | None = None) -> None:
  """One-line errors for weights of another kind than asked, or the wrong number of scenes."""
  if expect_kind and model.kind != expect_kind:
    raise ValueError(f"{model.source}: weights of kind {model.kind!r}, not {expect_kind!r}")
  need = model_fn.num_dates(model.kind)
  if len(inputs) != need:
    what = ("a change detector: give two scenes, BEFORE AFTER" if need == 2 else
            f"a {model.kind!r} model: give one scene")
    raise ValueError(f"{model.source}: weights of {what} (got {len(inputs)})")


def class_names(model, k: int) -> list[str]:
  source = _config_data(model).get("source")
  try:
    from data_pipelines import dense  # pylint: disable=g-import-not-at-top
    names = list(dense.class_names(source))
    if len(names) == k:
      return names
  except (KeyError, ValueError, TypeError, ImportError):
    pass
  return [f"class_{i}" for i in range(k)]


def window_size(model, window: int) -> int:
  size = int(window or _config_data(model).get("image_size") or model.spec.img_size)
  if size <= 0 or size % model.spec.patch:
    raise ValueError(f"window {size} px: must be a positive multiple of the patch size "
                     f"{model.spec.patch}")
  return size


def open_inputs(model, inputs, bands, align: str, units: str) -> prepare.SceneInput:
  scenes = [scene.open_scene(p, bands) for p in inputs]
  for s in scenes[1:]:
    scene.align(scenes[0], s, align)
  scope = _config_data(model).get("minmax_scope") or "image"
  return prepare.SceneInput(scenes, model.bands, model.normalization, scope, units)


def predict(model, inputs: Sequence[str], out: str, *, bands=None, window: int = 0,
            stride: int = 0, blend: str = "cosine", batch_size: int = 0,
            compute_dtype: str | None = None, probabilities: bool = False,
            embedding: str = "tile", align: str = "auto", units: str = "DN",
            overwrite: bool = False, expect_kind: str | None = None, process_index: int = 0,
            process_count: int = 1, wait_s: float = 7 * 86400,
            progress: bool = True) -> dict[str, Any]:
  """Applies `model` (inference.load) to the scene(s) `inputs` and writes `out` (module
  docstring). Returns a report: out, files, windows, seconds, windows_per_s, mpx_per_s."""
  check_kind(model, inputs, expect_kind)
  if storage.is_url(str(out)):   # predicted into a local folder, then uploaded
    if process_count > 1:
      raise ValueError(f"--out {out}: several processes write their rows into a shared folder; "
                       "give a local (or mounted) --out")
    if not overwrite and storage.exists(str(out)):
      raise FileExistsError(f"{out} exists")
    stage = output.staging_dir(str(out))
    stage.mkdir(parents=True, exist_ok=True)
    report = predict(model, inputs, str(stage / storage.basename(str(out))), bands=bands,
                     window=window, stride=stride, blend=blend, batch_size=batch_size,
                     compute_dtype=compute_dtype, probabilities=probabilities,
                     embedding=embedding, align=align, units=units, overwrite=overwrite,
                     expect_kind=expect_kind, wait_s=wait_s, progress=progress)
    return {**report, "out": str(out), "files": output.upload(stage, str(out))}
  if overwrite and process_count > 1:
    raise ValueError(f"--overwrite with several processes would let one delete the others' "
                     f"rows: remove {out} and {out}.partial first")
  inp = open_inputs(model, inputs, bands, align, units)
  size = window_size(model, window)
  dense = model_fn.is_dense(model.kind)
  stride = int(stride or (max(size // 2, 1) if dense else size))
  dtype = compute_dtype or default_compute_dtype()
  fn = model_fn.model_fn(model, compute_dtype=dtype, embedding=embedding,
                         window_normalizer=inp.window_normalizer())
  facts = {"weights": model.source, "kind": model.kind, "inputs": [str(p) for p in inputs],
           "bands": list(model.bands), "normalization": model.normalization,
           "minmax_scope": inp.scope, "window": size,
           "stride": stride if dense else size, "blend": blend if dense else "none",
           "compute_dtype": dtype, "probabilities": bool(probabilities and dense),
           "embedding": embedding if model.kind == "mae" else "none", "align": align,
           "units": units, "grid": str(inp.grid)}
  run = output.PartialRun(out, facts, overwrite=overwrite)
  run.start()
  t0 = time.monotonic()
  args = dict(batch_size=batch_size or default_batch_size(), process_index=process_index,
              process_count=process_count, progress=progress)
  if dense:
    n, files = _dense(model, inp, fn, run, size, stride, blend, probabilities, wait_s, **args)
  else:
    n, files = _cells(model, inp, fn, run, size, embedding, wait_s, **args)
  seconds = time.monotonic() - t0
  return {"out": str(out), "files": files, "windows": n, "seconds": seconds,
          "windows_per_s": n / max(seconds, 1e-9),
          "mpx_per_s": inp.height * inp.width / 1e6 / max(seconds, 1e-9) if n else 0.0}


def _todo(run: output.PartialRun, starts: Sequence[int], num: int, process_index: int,
          process_count: int) -> list[range]:
  share = windows.split_bands(num, process_count)
  mine = share[process_index] if process_index < len(share) else range(0)
  done = run.done([starts[k] for k in mine])
  return engine.contiguous_runs(k for k in mine if starts[k] not in done)


def _dense(model, inp, fn, run, size, stride, blend, probabilities, wait_s, *, batch_size,
           process_index, process_count, progress) -> tuple[int, list[str]]:
  plan = windows.RowPlan(inp.height, inp.width, size, stride)
  starts = [plan.rows_of(k)[0] for k in range(plan.num_bands)]
  runs = _todo(run, starts, plan.num_bands, process_index, process_count)
  total = sum((r.stop - plan.warmup(r.start)) * len(plan.xs) for r in runs)
  bar = Progress(total, enabled=progress)
  source = sources.RowSource(inp.read_rows, inp.height, inp.width, size)
  k = model.spec.num_classes
  cls_dtype = np.uint8 if k < output.CLASS_NODATA else np.uint16
  nodata = int(np.iinfo(cls_dtype).max)

  def emit(r0, r1, scores, valid):
    classes = np.where(valid, scores.argmax(0), nodata).astype(cls_dtype)
    arrays = {"classes": classes}
    if probabilities:
      arrays["probabilities"] = np.where(valid, scores, np.float32(np.nan)).astype(np.float32)
    run.write_strip(r0, **arrays)

  for r in runs:
    engine.run_bands(source, fn, plan, windows.blend_weights(size, blend), r, emit,
                     batch_size=batch_size, progress=bar)
  if process_index != 0:
    return bar.done, []
  run.wait_for(starts, wait_s)
  out = run.out
  files = []
  if probabilities:
    proba = out.with_name(f"{out.stem}_probabilities.tif")
    output.write_cog(proba, run.dir, output.cog_profile(inp.grid, k, "float32", float("nan")),
                     ((r0, run.read_strip(r0)["probabilities"]) for r0 in starts),
                     resampling="average", descriptions=class_names(model, k))
    files.append(str(proba))
  _sidecar(run, model, k)
  output.write_cog(out, run.dir, output.cog_profile(inp.grid, 1, np.dtype(cls_dtype).name,
                                                    nodata),
                   ((r0, run.read_strip(r0)["classes"][None]) for r0 in starts))
  run.finish()
  return bar.done, [str(out)] + files


def _sidecar(run, model, k: int) -> None:
  output.atomic_write_json(run.out.with_name(run.out.name + ".json"),
                           {**run.facts, "classes": class_names(model, k),
                            "model": model.meta.get("model")})


def _cells(model, inp, fn, run, size, embedding, wait_s, *, batch_size, process_index,
           process_count, progress) -> tuple[int, list[str]]:
  g = model_fn.cells_per_window(model, size, embedding)
  nrows, ncols = math.ceil(inp.height / size), math.ceil(inp.width / size)
  starts = [i * g for i in range(nrows)]
  runs = _todo(run, starts, nrows, process_index, process_count)
  bar = Progress(sum(len(r) for r in runs) * ncols, enabled=progress)
  source = sources.RowSource(inp.read_rows, inp.height, inp.width, size, ncols * size)

  def emit(i, block, valid):
    run.write_strip(i * g, scores=np.where(valid, block, np.float32(np.nan)), valid=valid)

  for r in runs:
    engine.run_cells(source, fn, size, r, ncols, emit, batch_size=batch_size, progress=bar)
  if process_index != 0:
    return bar.done, []
  run.wait_for(starts, wait_s)
  t = inp.grid.transform
  cell = size // g
  grid = scene.Grid(inp.grid.crs, t @ type(t).scale(cell), nrows * g, ncols * g)
  first = run.read_strip(0)["scores"]
  d = first.shape[0]
  out, files = run.out, [str(run.out)]
  names = class_names(model, d) if model.kind == "vit" else [f"dim_{i}" for i in range(d)]
  if model.kind == "vit":
    table = out.with_name(f"{out.stem}.csv")
    output.write_table(table, inp.grid, cell, (
        (r0, (z["scores"], z["valid"])) for r0, z in
        ((r0, run.read_strip(r0)) for r0 in starts)), names)
    files.append(str(table))
  _sidecar(run, model, d)
  output.write_cog(out, run.dir, output.cog_profile(grid, d, "float32", float("nan")),
                   ((r0, run.read_strip(r0)["scores"]) for r0 in starts),
                   resampling="average", descriptions=names)
  run.finish()
  return bar.done, files
