"""Whole-scene prediction: a loaded model (`spectralgpt_jax.inference.load`) applied to
scenes read window by window, written as Cloud-Optimized GeoTIFFs (docs/inference.md).

  from spectralgpt_jax import inference, predict
  model = inference.load("runs/oscd/run")
  predict.predict(model, ["city/imgs_1", "city/imgs_2"], "change.tif")

Modules: `run.py` (`predict`, the one code path of the `predict` command), `scene.py` (readers:
multi-band GeoTIFF / COG, folders of band files; grids and alignment), `prepare.py` (bands by
name, normalization, nodata), `windows.py` (window plan, blend weights), `blend.py` (the row
accumulator), `sources.py` (window sources: in memory, by rows), `engine.py` (batched calls,
rows handed out; also `evaluate`'s whole-image prediction), `model_fn.py` (the model call per
kind), `output.py` (strips, resume, COG), `progress.py`.
"""



def predict(model, inputs, out, **kwargs):
  """`run.predict` (imported on first use: the engine's modules stay numpy only)."""
  from spectralgpt_jax.predict import run  # pylint: disable=g-import-not-at-top
  return run.predict(model, inputs, out, **kwargs)
