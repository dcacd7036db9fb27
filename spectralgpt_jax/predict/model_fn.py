"""The model call of a prediction, by weights kind (`inference.load(...).kind`):

  "seg", "change"  dense: windows [N, C, S, S] (one per date) -> class probabilities
                   [N, K, S, S] (softmax of the logits, as `evaluate` scores them);
  "vit"            classifier: one window -> class scores [N, K, 1, 1] (softmax; sigmoid for
                   a run trained on multi-label data, `data.label_type` "multi");
  "mae"            encoder: window -> embedding [N, D, g, g]: the encoder's tokens (every token
                   kept, after its final norm) averaged over the spectral groups, one D-vector
                   per token cell (g = S / patch, `embedding="token"`) or over the whole window
                   (g = 1, `embedding="tile"`, the default).

Matmuls in `compute_dtype` (SpectralGPT.compute_model: bf16 operands, float32 accumulation,
norms and softmax). The jitted function returns a device array; the engine reads it back.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from spectralgpt_jax.inference.model import encoder_tokens
from spectralgpt_jax.models.mae import token_grid

KINDS = ("seg", "change", "vit", "mae")
EMBEDDINGS = ("tile", "token")


def num_dates(kind: str) -> int:
  return 2 if kind == "change" else 1


def is_dense(kind: str) -> bool:
  return kind in ("seg", "change")


def cells_per_window(model, size: int, embedding: str = "tile") -> int:
  """g: output cells per window side of the coarse kinds."""
  if model.kind == "mae" and embedding == "token":
    return size // model.spec.patch
  return 1


def multilabel(model) -> bool:
  data = (model.meta.get("config") or {}).get("data") or {}
  return data.get("label_type") == "multi"


def model_fn(model, *, compute_dtype: str = "float32", embedding: str = "tile",
             window_normalizer: Callable | None = None) -> Callable:
  """fn(*dates [N, C, S, S]) -> scores [N, K or D, g, g] (module docstring)."""
  if model.kind not in KINDS:
    raise ValueError(f"weights of kind {model.kind!r} cannot predict (kinds: {KINDS})")
  if embedding not in EMBEDDINGS:
    raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}")
  cache = model.__dict__.setdefault("_predict_fns", {})
  key = (compute_dtype, embedding)
  if key not in cache:
    cache[key] = jax.jit(_apply(model, compute_dtype, embedding))
  jitted, params = cache[key], model.params

  def fn(*dates):
    if window_normalizer is not None:
      dates = [window_normalizer(d) for d in dates]
    return jitted(params, *dates)

  return fn


def _apply(model, compute_dtype: str, embedding: str) -> Callable:
  """apply(params, *dates) -> scores, traced once per compute dtype and embedding."""
  m = model.compute_model(compute_dtype)
  kind = model.kind
  if is_dense(kind):
    def apply(p, *xs):
      out = m.apply({"params": p}, *xs, train=False)
      return jnp.moveaxis(jax.nn.softmax(out.astype(jnp.float32), axis=-1), -1, 1)
  elif kind == "vit":
    squash = jax.nn.sigmoid if multilabel(model) else (lambda z: jax.nn.softmax(z, axis=-1))

    def apply(p, x):
      return squash(m.apply({"params": p}, x, train=False).astype(jnp.float32))[:, :, None, None]
  else:
    def apply(p, x):
      tokens = encoder_tokens(m, p, x).astype(jnp.float32)   # [N, L, D]
      t, h, w = token_grid(m.spec, x.shape)
      cells = tokens.reshape(x.shape[0], t, h, w, -1).mean(axis=1)   # [N, h, w, D]
      if embedding == "tile":
        cells = cells.mean(axis=(1, 2), keepdims=True)
      return jnp.moveaxis(cells, -1, 1)
  return apply
