"""Separable learned position embeddings (spatial grid + spectral groups [+ dates]) and resizing.

The official model (sep_pos_embed=True) learns a spatial table [1, H'W', D] and a spectral
("temporal" in its names) table [1, T', D]; the embedding of token (t, s) is
spatial[s] + temporal[t]. We keep the official names so export is a renaming.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from spectralgpt_jax.models import wavelengths
from spectralgpt_jax.models.dense_layer import Dense
from spectralgpt_jax.sharding import axis_names as ax

# The official init is trunc_normal_(std=0.02) with absolute cut-offs at +-2, i.e. +-100 std:
# a plain normal, which is what we use.
POS_INIT = nn.initializers.normal(0.02)
POS_AXES = (None, ax.TOKENS, ax.EMBED)


def combine(spatial: jax.Array, temporal: jax.Array, date: jax.Array | None = None) -> jax.Array:
  """[1, S, D] + [1, G, D] (+ [1, T, D]) -> [1, T*G*S, D], token index (date, group, position)."""
  d = spatial.shape[-1]
  pos = temporal[0][:, None, :] + spatial[0][None, :, :]  # [G, S, D]
  if date is not None:
    pos = date[0][:, None, None, :] + pos[None]  # [T, G, S, D]
  return pos.reshape(1, -1, d)


def make_tables(module: nn.Module, prefix: str, dim: int, num_positions: int, num_groups: int,
                num_dates: int = 1) -> tuple[jax.Array, ...]:
  """Declares the separable tables as params of `module` (call from its `setup`).

  Params are named `{prefix}pos_embed_spatial` [1, H'W', D], `{prefix}pos_embed_temporal`
  [1, T', D] and, only with a date axis, `{prefix}pos_embed_date` [1, T, D]; prefix is "" for the
  encoder and "decoder_" for the decoder, the official names. Returns the tables in `combine`
  argument order.
  """
  init = nn.with_logical_partitioning(POS_INIT, POS_AXES)
  tables = [module.param(f"{prefix}pos_embed_spatial", init, (1, num_positions, dim)),
            module.param(f"{prefix}pos_embed_temporal", init, (1, num_groups, dim))]
  if num_dates > 1:
    tables.append(module.param(f"{prefix}pos_embed_date", init, (1, num_dates, dim)))
  return tuple(tables)


def resize_spatial(table: np.ndarray | jax.Array, new_side: tuple[int, int] | int,
                   old_side: tuple[int, int] | int | None = None) -> jax.Array:
  """Bicubic resize of a spatial table [1, h*w, D] to [1, h'*w', D] (identity at equal size)."""
  table = jnp.asarray(table)
  n, d = table.shape[1], table.shape[2]
  if old_side is None:
    side = int(round(n ** 0.5))
    if side * side != n:
      raise ValueError(f"spatial table with {n} positions is not square; pass old_side")
    old_side = side
  old = (old_side, old_side) if isinstance(old_side, int) else tuple(old_side)
  new = (new_side, new_side) if isinstance(new_side, int) else tuple(new_side)
  if old[0] * old[1] != n:
    raise ValueError(f"old grid {old} does not match a table of {n} positions")
  if old == new:
    return table
  grid = table[0].reshape(*old, d).astype(jnp.float32)
  out = jax.image.resize(grid, (*new, d), method="bicubic")
  return out.reshape(1, new[0] * new[1], d).astype(table.dtype)


def resize_groups(table: np.ndarray | jax.Array, new_groups: int) -> jax.Array:
  """Linear resize of a spectral-group (or date) table [1, G, D] to [1, G', D]."""
  table = jnp.asarray(table)
  g, d = table.shape[1], table.shape[2]
  if g == new_groups:
    return table
  out = jax.image.resize(table[0].astype(jnp.float32), (new_groups, d), method="linear")
  return out[None].astype(table.dtype)


def spectral_residual(dim: int) -> Dense:
  """The zero-initialised residual of wavelength positions (kernel [wavelengths.NUM_FEATURES,
  D], bias [D]); a module assigns it in `setup` as `{prefix}pos_embed_spectral_residual`, only
  for a spec with spectral_positions == "wavelength"."""
  zeros = lambda axes: nn.with_logical_partitioning(nn.initializers.zeros, axes)
  return Dense(dim, kernel_init=zeros((None, ax.EMBED)), bias_init=zeros((ax.EMBED,)))


def at_wavelengths(table: jax.Array, plan: wavelengths.GroupPlan,
                   residual: Dense) -> jax.Array:
  """Spectral table [1, G_ref, D] -> [1, G, D] for the groups of `plan`.

  Row g = table[lower] * (1 - w) + table[upper] * w + residual(features): elementwise (no
  matmul, so a weight of exactly 0 or 1 reproduces a table row bit for bit whatever the
  matmul precision), and a zero residual adds exactly 0.
  """
  rows = table[0]
  w = jnp.asarray(plan.weight, jnp.float32)[:, None].astype(rows.dtype)
  lower = jnp.take(rows, jnp.asarray(plan.lower), axis=0)
  upper = jnp.take(rows, jnp.asarray(plan.upper), axis=0)
  feats = jnp.asarray(np.asarray(plan.features, np.float32))
  out = lower * (1 - w) + upper * w + residual(feats).astype(rows.dtype)
  return out[None]
