"""Flax params <-> official SpectralGPT state_dict: one naming table plus layout transforms.

  Flax path (unrolled)                      official key                 transform
  pos_embed_spatial, ..., mask_token        same name                    none
  patch_embed/proj/kernel [t*p*p, D]        patch_embed.proj.weight      .T, reshape (D, 1, t, p, p)
  <stack>/layers_<i>/<...>/kernel [in,out]  <stack>.<i>.<...>.weight     .T (Linear is [out, in])
  .../scale, .../bias (LayerNorm)           ....weight, ....bias         none
Stacks are `blocks` and `decoder_blocks`; scanned stacks are unstacked first. `entry_for_path`
and `entry_for_key` give the `Entry` (both names and the transform) of one parameter; every
conversion here (values and shapes, both directions) goes through them. All arrays are numpy on
the host; nothing here touches a device or a mesh.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping

import jax
import numpy as np
from flax import traverse_util

from spectralgpt_jax.models.transformer import STACKS, to_scanned, to_unrolled
from spectralgpt_jax.models.variants import ModelSpec

# Official state_dict order of top-level components (models_mae_spectral / models_vit_tensor).
# The wavelength-position residuals (`[decoder_]pos_embed_spectral_residual.weight` [D, F] and
# `.bias` [D], a Linear; only with spec.spectral_positions == "wavelength") follow their tables.
_ORDER = ("pos_embed", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_date",
          "pos_embed_spectral_residual", "mask_token", "decoder_pos_embed_spatial",
          "decoder_pos_embed_temporal", "decoder_pos_embed_date",
          "decoder_pos_embed_spectral_residual", "patch_embed", "blocks", "norm", "decoder_embed",
          "decoder_blocks", "decoder_norm", "decoder_pred", "head")
# Within a block: norm1, attn(q, k, v, proj), norm2, mlp(fc1, fc2); weight before bias.
_RANK = {"norm1": 0, "attn": 1, "norm2": 2, "mlp": 3, "q": 0, "k": 1, "v": 2, "proj": 3,
         "fc1": 0, "fc2": 1, "kernel": 0, "scale": 0, "bias": 1}
_NORMS = ("norm", "norm1", "norm2", "decoder_norm")
_LAYER = re.compile(r"^layers_(\d+)$")
_PATCH_KERNEL = ("patch_embed", "proj", "kernel")

# transform name -> (Flax value -> official value given the spec, official -> Flax). Written
# with array methods only, so they also run under jax.eval_shape (official shapes, no memory).
_TRANSFORMS: dict[str, tuple[Callable[[Any, ModelSpec], Any], Callable[[Any], Any]]] = {
    "none": (lambda x, s: x, lambda x: x),
    "linear": (lambda x, s: x.T, lambda x: x.T),  # Dense [in, out] <-> Linear [out, in]
    "patch": (lambda x, s: x.T.reshape(-1, 1, s.t_patch, s.patch, s.patch),  # Conv3d
              lambda x: x.reshape(x.shape[0], -1).T),
}


@dataclasses.dataclass(frozen=True)
class Entry:
  """One parameter in both layouts: Flax path (unrolled), official key, transform name."""

  path: tuple[str, ...]
  key: str
  transform: str

  def to_torch(self, value, spec: ModelSpec):
    return _TRANSFORMS[self.transform][0](value, spec)

  def to_flax(self, value):
    return _TRANSFORMS[self.transform][1](value)

  def torch_shape(self, shape: tuple[int, ...], spec: ModelSpec) -> tuple[int, ...]:
    out = jax.eval_shape(lambda x: self.to_torch(x, spec), jax.ShapeDtypeStruct(shape, np.float32))
    return tuple(out.shape)


def _transform(path: tuple[str, ...]) -> str:
  if path == _PATCH_KERNEL:
    return "patch"
  return "linear" if path[-1] == "kernel" else "none"


def entry_for_path(path: tuple[str, ...]) -> Entry:
  """The Entry of an unrolled Flax path, e.g. ("blocks", "layers_0", "mlp", "fc1", "kernel")."""
  parts = [m.group(1) if (m := _LAYER.match(p)) else p for p in path]
  if parts[-1] in ("kernel", "scale"):
    parts[-1] = "weight"
  return Entry(tuple(path), ".".join(parts), _transform(tuple(path)))


def entry_for_key(key: str) -> Entry:
  """The Entry of an official state_dict key, e.g. "blocks.0.mlp.fc1.weight"."""
  parts = key.split(".")
  if parts[0] in STACKS:
    if len(parts) < 3 or not parts[1].isdigit():
      raise KeyError(f"unexpected block key {key!r}")
    parts[1] = f"layers_{parts[1]}"
  if parts[-1] == "weight":
    parts[-1] = "scale" if len(parts) > 1 and parts[-2] in _NORMS else "kernel"
  path = tuple(parts)
  return Entry(path, key, _transform(path))


def _sort_key(key: str) -> tuple:
  parts = key.split(".")
  head = _ORDER.index(parts[0]) if parts[0] in _ORDER else len(_ORDER)
  layer = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
  return (head, layer)  # stable sort keeps the within-layer order of insertion


def flax_to_torch(params: Mapping, spec: ModelSpec) -> dict[str, np.ndarray]:
  """Flax params (scanned or unrolled; boxed leaves must be unboxed) -> official state_dict.

  Keys come in the official order; arrays are float32/bfloat16 numpy, C-contiguous.
  """
  flat = traverse_util.flatten_dict(to_unrolled(dict(params)))
  state = {}
  for path in sorted(flat, key=lambda p: [_RANK.get(x, 0) for x in p]):
    entry = entry_for_path(path)
    state[entry.key] = np.ascontiguousarray(entry.to_torch(np.asarray(flat[path]), spec))
  return dict(sorted(state.items(), key=lambda kv: _sort_key(kv[0])))


def torch_to_flax(state_dict: Mapping[str, np.ndarray], *, scan: bool = False) -> dict:
  """Official state_dict (numpy values) -> nested Flax params; `scan` stacks the blocks.

  The inverse of `flax_to_torch`: Linear weights are transposed, the Conv3d weight flattened.
  A malformed block key raises KeyError; compare key sets first (to_torch.compare_layout).
  """
  flat = {}
  for key, value in state_dict.items():
    entry = entry_for_key(key)
    flat[entry.path] = np.ascontiguousarray(entry.to_flax(np.asarray(value)))
  params = traverse_util.unflatten_dict(flat)
  return to_scanned(params) if scan else params


# --- Dates <-> the official single temporal table. --------------------------------------------
# The official model has no date table: a series of T dates of C bands is num_frames = T*C, and
# its temporal table [1, T*G, D] holds date[t] + temporal[g] at row t*G + g (posembed.combine's
# token order), which is how a num_dates model's tables are written and read back.

def fold_dates(params: Mapping) -> dict:
  """Params with `{prefix}pos_embed_date` [1, T, D] added into `{prefix}pos_embed_temporal`
  [1, G, D] -> [1, T*G, D] (encoder and decoder); the date tables are removed."""
  out = dict(params)
  for prefix in ("", "decoder_"):
    date = out.pop(f"{prefix}pos_embed_date", None)
    if date is not None:
      temporal = np.asarray(out[f"{prefix}pos_embed_temporal"])
      date = np.asarray(date)
      folded = date[0][:, None, :] + temporal[0][None, :, :]  # [T, G, D]
      out[f"{prefix}pos_embed_temporal"] = folded.reshape(1, -1, folded.shape[-1])
  return out


def unfold_dates(state: Mapping[str, np.ndarray], num_dates: int, *, rtol: float = 1e-5,
                 atol: float = 1e-6) -> dict[str, np.ndarray] | None:
  """Official state_dict whose `{prefix}pos_embed_temporal` are [1, T*G, D] -> the same with
  temporal [1, G, D] = folded[:G] and `{prefix}pos_embed_date` [1, T, D] = folded[t*G] -
  folded[0]. None if a table has no such structure (within rtol/atol) or T does not divide it."""
  out = dict(state)
  for prefix in ("", "decoder_"):
    key = f"{prefix}pos_embed_temporal"
    if key not in out:
      continue
    folded = np.asarray(out[key])
    if folded.shape[1] % num_dates:
      return None
    series = folded[0].reshape(num_dates, folded.shape[1] // num_dates, folded.shape[2])
    temporal, date = series[0], series[:, 0] - series[0, 0]
    if not np.allclose(date[:, None, :] + temporal[None], series, rtol=rtol, atol=atol):
      return None
    out[key], out[f"{prefix}pos_embed_date"] = temporal[None], date[None]
  return out
