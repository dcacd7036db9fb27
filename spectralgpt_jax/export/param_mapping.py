"""Flax params <-> official SpectralGPT state_dict: a renaming table plus layout transforms.

  Flax path (unrolled)                      official key                 transform
  pos_embed_spatial, ..., mask_token        same name                    none
  patch_embed/proj/kernel [t*p*p, D]        patch_embed.proj.weight      .T, reshape (D, 1, t, p, p)
  <stack>/layers_<i>/<...>/kernel [in,out]  <stack>.<i>.<...>.weight     .T (Linear is [out, in])
  .../scale, .../bias (LayerNorm)           ....weight, ....bias         none
Stacks are `blocks` and `decoder_blocks`; scanned stacks are unstacked first. All arrays are
numpy on the host; nothing here touches a device or a mesh.
"""

from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from spectralgpt_jax.models.transformer import to_scanned, to_unrolled
from spectralgpt_jax.models.variants import ModelSpec

# Official state_dict order of top-level components (models_mae_spectral / models_vit_tensor).
_ORDER = ("pos_embed", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_date", "mask_token",
          "decoder_pos_embed_spatial", "decoder_pos_embed_temporal", "decoder_pos_embed_date",
          "patch_embed", "blocks", "norm", "decoder_embed", "decoder_blocks", "decoder_norm",
          "decoder_pred", "head")
_LAYER = re.compile(r"^layers_(\d+)$")


def _flatten(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], np.ndarray]:
  out = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      out.update(_flatten(value, prefix + (key,)))
    else:
      out[prefix + (key,)] = value
  return out


def _sort_key(key: str) -> tuple:
  parts = key.split(".")
  head = _ORDER.index(parts[0]) if parts[0] in _ORDER else len(_ORDER)
  layer = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
  return (head, layer)  # stable sort keeps the within-layer order of insertion


def _torch_name(path: tuple[str, ...]) -> str:
  parts = [m.group(1) if (m := _LAYER.match(p)) else p for p in path]
  if parts[-1] in ("kernel", "scale"):
    parts[-1] = "weight"
  return ".".join(parts)


def flax_to_torch(params: Mapping, spec: ModelSpec) -> dict[str, np.ndarray]:
  """Flax params (scanned or unrolled; boxed leaves must be unboxed) -> official state_dict.

  Keys come in the official order; arrays are float32/bfloat16 numpy, C-contiguous.
  """
  flat = _flatten(to_unrolled(dict(params)))
  state = {}
  # Within a block: norm1, attn(q, k, v, proj), norm2, mlp(fc1, fc2); weight before bias.
  rank = {"norm1": 0, "attn": 1, "norm2": 2, "mlp": 3, "q": 0, "k": 1, "v": 2, "proj": 3,
          "fc1": 0, "fc2": 1, "kernel": 0, "scale": 0, "bias": 1}
  for path in sorted(flat, key=lambda p: [rank.get(x, 0) for x in p]):
    value = np.asarray(flat[path])
    if path == ("patch_embed", "proj", "kernel"):
      value = value.T.reshape(-1, 1, spec.t_patch, spec.patch, spec.patch)
    elif path[-1] == "kernel":
      value = value.T
    state[_torch_name(path)] = np.ascontiguousarray(value)
  return dict(sorted(state.items(), key=lambda kv: _sort_key(kv[0])))


def torch_to_flax(state_dict: Mapping[str, np.ndarray], *, scan: bool = False) -> dict:
  """Official state_dict (numpy values) -> nested Flax params; `scan` stacks the blocks.

  The inverse of `flax_to_torch`: Linear weights are transposed, the Conv3d weight flattened.
  A key that maps to no Flax parameter raises; use `check_keys` first for a full report.
  """
  params: dict = {}
  for key, value in state_dict.items():
    value = np.asarray(value)
    parts = key.split(".")
    if parts[0] in ("blocks", "decoder_blocks"):
      if len(parts) < 3 or not parts[1].isdigit():
        raise KeyError(f"unexpected block key {key!r}")
      parts[1] = f"layers_{parts[1]}"
    if key == "patch_embed.proj.weight":
      value = value.reshape(value.shape[0], -1).T
      parts[-1] = "kernel"
    elif parts[-1] == "weight":
      is_norm = parts[-2] in ("norm", "norm1", "norm2", "decoder_norm")
      parts[-1] = "scale" if is_norm else "kernel"
      value = value if is_norm else value.T
    node = params
    for p in parts[:-1]:
      node = node.setdefault(p, {})
    node[parts[-1]] = np.ascontiguousarray(value)
  return to_scanned(params) if scan else params


def check_keys(state_keys, expected_keys) -> None:
  """Raises KeyError listing missing and unexpected keys if the two key sets differ."""
  state_keys, expected_keys = set(state_keys), set(expected_keys)
  missing, unexpected = sorted(expected_keys - state_keys), sorted(state_keys - expected_keys)
  if missing or unexpected:
    raise KeyError(f"state_dict does not match: missing keys {missing}; "
                   f"unexpected keys {unexpected}")
