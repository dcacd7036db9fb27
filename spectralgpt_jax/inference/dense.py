"""Batch calls of loaded classifiers and dense models on prepared (normalized) inputs.

  dense_logits(model, params, x, x2)   segmenter / change detector -> [B, K, H, W] float32
  class_logits(model, params, x)       classifier -> [B, K] float32
  run_protocol(meta, spec, where)      task, classes, output and tile protocol of a dense run

Inputs are what the models take: float32 [B, C, H, W], normalized, bands in the model's order
(evaluation.dense_eval feeds its tiles the same way); H and W multiples of the patch size (the
position table is resized for another size than the model's). A change detector returns
log-probabilities (LogSoftmax, as the official OSCD model), a segmenter raw logits; softmax over
axis 1 gives the class probabilities dense_eval scores in both cases.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import dense as dense_data
from spectralgpt_jax.export import dense_export

DENSE_KINDS = dense_export.DENSE_KINDS


def make_dense_fn(model: nn.Module) -> Callable:
  """jit fn(params, x[, x2]) -> [B, K, H, W] (eval mode, channels first)."""
  return jax.jit(lambda p, *xs: jnp.moveaxis(
      model.apply({"params": p}, *xs, train=False).astype(jnp.float32), -1, 1))


def make_class_fn(model: nn.Module) -> Callable:
  """jit fn(params, x) -> [B, K] classifier logits (eval mode)."""
  return jax.jit(lambda p, x: model.apply({"params": p}, x, train=False).astype(jnp.float32))


def check_dense_inputs(kind: str, spec, x: np.ndarray, x2: np.ndarray | None,
                       planes: int | None = None) -> list:
  """[x] or [x, x2] as float32 [B, C, H, W]; ValueError (one line) for a wrong kind, a
  missing or unexpected second date, or shapes the model cannot take. `planes`: the input
  planes C (default spec.num_bands; a model built for a band set takes that set's)."""
  planes = spec.num_bands if planes is None else planes
  if kind not in DENSE_KINDS:
    raise ValueError(f"dense_logits needs a segmentation or change-detection model; this is "
                     f"a {kind} model (use class_logits / embed)")
  if (kind == "change") != (x2 is not None):
    raise ValueError("a change-detection model takes two dates: dense_logits(x, x2)"
                     if kind == "change" else
                     "a segmentation model takes one image; got a second date (x2)")
  xs = [np.asarray(a, np.float32) for a in ([x] if x2 is None else [x, x2])]
  for a in xs:
    if a.ndim != 4 or a.shape[1] != planes or a.shape[2] % spec.patch \
        or a.shape[3] % spec.patch:
      raise ValueError(f"input {a.shape}: expected [B, {planes}, H, W] with H and W "
                       f"multiples of the patch size {spec.patch}")
  if len(xs) == 2 and xs[0].shape != xs[1].shape:
    raise ValueError(f"the two dates differ in shape: {xs[0].shape} vs {xs[1].shape}")
  return xs


def run_batched(fn: Callable, params, inputs: list[np.ndarray], batch_size: int) -> np.ndarray:
  """fn(params, *inputs) over the leading axis in batches of `batch_size`, float32 on the
  host; batch i+1 is dispatched before batch i is read back."""
  outs, pending = [], None
  for i in range(0, inputs[0].shape[0], batch_size):
    out = fn(params, *[a[i:i + batch_size] for a in inputs])
    if pending is not None:
      outs.append(np.asarray(pending, np.float32))
    pending = out
  outs.append(np.asarray(pending, np.float32))
  return np.concatenate(outs, axis=0)


def run_protocol(meta: Mapping[str, Any], spec,
                 run_dir: str | pathlib.Path | None) -> dict[str, Any]:
  """The dense fields of a run's meta (task, classes, num_classes, output, tile) as a dense
  export's manifest carries them: classes from the run's data source, tile size / stride from
  its evaluation (metrics.json in or beside `run_dir`) or the training input size. For a file
  without a manifest (run_dir None, no config): class_<i>, the model's input size."""
  run_dir = pathlib.Path(run_dir) if run_dir is not None else None

  def names(source: str):
    try:
      return dense_data.class_names(source)
    except (KeyError, ValueError):
      return None

  return dense_export.dense_protocol(meta, spec, run_dir=run_dir, classes=names)
