"""MAE random masking as pure functions with static shapes (the number kept is a Python int)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class MaskInfo(NamedTuple):
  """Result of random masking over L tokens, K of them kept.

  Attributes:
    ids_keep: [B, K] int32, indices of kept tokens (smallest noise first).
    ids_restore: [B, L] int32, inverse permutation: gathers [kept; masked] back to token order.
    mask: [B, L] float32, 1 for removed tokens, in token order.
    ids_shuffle: [B, L] int32, the shuffle itself (ids_keep is its first K entries).
  """

  ids_keep: jax.Array
  ids_restore: jax.Array
  mask: jax.Array
  ids_shuffle: jax.Array


def num_kept(num_tokens: int, mask_ratio: float) -> int:
  """int(L * (1 - r)), the official rounding (102 of 1024 tokens at r = 0.9)."""
  if not 0.0 <= mask_ratio < 1.0:
    raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
  return int(num_tokens * (1 - mask_ratio))


def random_masking(noise: jax.Array, mask_ratio: float, missing=None) -> MaskInfo:
  """Per-example shuffle by ascending noise; keeps the first int(L'(1-r)) tokens.

  Args:
    noise: [B, L] per-token uniform noise (pass the same noise to compare implementations).
    mask_ratio: fraction of tokens removed; a Python float (it fixes the shapes).
    missing: optional [L] host bool array, True for tokens the input does not have (spectral
      groups dropped by the caller): they are never kept, count as removed in `mask`, and the
      ratio applies to the L' = L - missing.sum() tokens that exist.
  """
  length = noise.shape[1]
  available = length
  if missing is not None:
    missing = np.asarray(missing, bool)
    if missing.shape != (length,):
      raise ValueError(f"missing has shape {missing.shape}; expected ({length},)")
    available = length - int(missing.sum())
    noise = jnp.where(jnp.asarray(missing)[None], jnp.inf, noise)  # sorted last, stably
  keep = num_kept(available, mask_ratio)
  ids_shuffle = jnp.argsort(noise, axis=1).astype(jnp.int32)
  ids_restore = jnp.argsort(ids_shuffle, axis=1).astype(jnp.int32)
  ids_keep = ids_shuffle[:, :keep]
  # Position j of the shuffled order is kept iff j < keep; map back to token order.
  mask = (ids_restore >= keep).astype(jnp.float32)
  return MaskInfo(ids_keep=ids_keep, ids_restore=ids_restore, mask=mask, ids_shuffle=ids_shuffle)


def gather_tokens(x: jax.Array, ids: jax.Array) -> jax.Array:
  """x [B, L, D], ids [B, K] -> [B, K, D]."""
  return jnp.take_along_axis(x, ids[..., None], axis=1)


@jax.custom_vjp
def permute_tokens(x: jax.Array, perm: jax.Array, inverse: jax.Array) -> jax.Array:
  """x [B, L, D] reordered by the permutation perm [B, L]; inverse = argsort(perm).

  Same as gather_tokens(x, perm), but the backward is a gather by `inverse` instead of the
  scatter-add autodiff would emit (serial and slow on CPU for the decoder's 1024 tokens).
  """
  return gather_tokens(x, perm)


def _permute_fwd(x, perm, inverse):
  return gather_tokens(x, perm), (perm, inverse)


def _permute_bwd(res, g):
  perm, inverse = res
  return gather_tokens(g, inverse), None, None


permute_tokens.defvjp(_permute_fwd, _permute_bwd)
