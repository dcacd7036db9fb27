"""3D spatial-spectral tubelets: patchify/unpatchify and the patch embedding.

A cube [B, C, H, W] is cut into tubelets of t bands x p x p pixels. Tokens are ordered
(spectral group, row, col), spectral group slowest, exactly as the official Conv3d + flatten;
values inside a token are ordered (band in group, pixel row, pixel col), which is the C-order
flatten of the Conv3d kernel (kt, kh, kw), so the Conv3d is a Dense on patchified vectors.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.models import ops as ops_lib
from spectralgpt_jax.models.dense_layer import Dense
from spectralgpt_jax.sharding import axis_names as ax


def fold_dates(x: jax.Array) -> jax.Array:
  """[B, T, C, H, W] time series -> [B, T*C, H, W] (dates slowest); [B, C, H, W] unchanged."""
  if x.ndim == 5:
    return x.reshape(x.shape[0], x.shape[1] * x.shape[2], *x.shape[3:])
  if x.ndim != 4:
    raise ValueError(f"expected a cube [B, C, H, W] or series [B, T, C, H, W], got {x.shape}")
  return x


def patchify(x: jax.Array, t_patch: int, patch: int) -> jax.Array:
  """[B, C, H, W] -> [B, (C/t)*(H/p)*(W/p), t*p*p]."""
  b, c, h, w = x.shape
  if c % t_patch or h % patch or w % patch:
    raise ValueError(f"cube {x.shape} is not divisible into {t_patch}x{patch}x{patch} tubelets")
  g, hp, wp = c // t_patch, h // patch, w // patch
  x = x.reshape(b, g, t_patch, hp, patch, wp, patch)
  x = x.transpose(0, 1, 3, 5, 2, 4, 6)  # b, g, hp, wp, t, p, q
  return x.reshape(b, g * hp * wp, t_patch * patch * patch)


def unpatchify(tokens: jax.Array, grid: tuple[int, int, int], t_patch: int,
               patch: int) -> jax.Array:
  """[B, G*H'*W', t*p*p] -> [B, G*t, H'*p, W'*p]; the inverse of `patchify`."""
  b = tokens.shape[0]
  g, hp, wp = grid
  x = tokens.reshape(b, g, hp, wp, t_patch, patch, patch)
  x = x.transpose(0, 1, 4, 2, 5, 3, 6)  # b, g, t, hp, p, wp, q
  return x.reshape(b, g * t_patch, hp * patch, wp * patch)


def torch_default_bias_init(fan_in: int) -> nn.initializers.Initializer:
  """PyTorch's default Linear/Conv bias init, uniform(+-1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


class PatchEmbed(nn.Module):
  """Tubelet embedding, equal to the official Conv3d(1, D, kernel=stride=(t, p, p)).

  Attributes:
    embed_dim: output width D.
    t_patch, patch: tubelet size.
    ops: implementations of the products (ops.Ops).
  Input [B, C, H, W]; output [B, L, D] with L = (C/t)(H/p)(W/p).
  """

  embed_dim: int
  t_patch: int
  patch: int
  dtype: jnp.dtype | None = None
  param_dtype: jnp.dtype = jnp.float32
  ops: ops_lib.Ops = ops_lib.XLA_OPS

  def setup(self):
    fan_in = self.t_patch * self.patch * self.patch
    # xavier_uniform over the (D, t*p*p) view as the official init; bias keeps torch's default.
    self.proj = Dense(
        self.embed_dim, dtype=self.dtype, param_dtype=self.param_dtype, ops=self.ops,
        kernel_init=nn.with_logical_partitioning(nn.initializers.xavier_uniform(),
                                                 (ax.PATCH_IN, ax.EMBED)),
        bias_init=nn.with_logical_partitioning(torch_default_bias_init(fan_in), (ax.EMBED,)))

  def embed(self, tubelets: jax.Array) -> jax.Array:
    """Already patchified tubelets [B, N, t*p*p] -> tokens [B, N, D]."""
    return self.proj(tubelets)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.embed(patchify(x, self.t_patch, self.patch))
