"""Multi-head self-attention with separate q, k, v and proj projections (official key names)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.models import ops as ops_lib
from spectralgpt_jax.models.dense_layer import Dense
from spectralgpt_jax.sharding import axis_names as ax


def dense(features: int, axes: tuple[str | None, str | None], name: str | None = None,
          dtype=None, param_dtype=jnp.float32, ops: ops_lib.Ops = ops_lib.XLA_OPS) -> Dense:
  """Linear layer with the official init (xavier_uniform weight, zero bias) and logical axes."""
  return Dense(
      features, dtype=dtype, param_dtype=param_dtype, name=name, ops=ops,
      kernel_init=nn.with_logical_partitioning(nn.initializers.xavier_uniform(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)))


class Attention(nn.Module):
  """Global self-attention over all tokens. Input and output [B, N, D].

  Attributes:
    num_heads: heads H (head_dim = D / H).
    dtype: operand dtype of the projections and the attention matmuls (softmax stays float32).
    ops: implementations of the products (`ops.attention` computes softmax(q k^T / sqrt(d)) v).
  """

  num_heads: int
  dtype: Any = None
  param_dtype: Any = jnp.float32
  ops: ops_lib.Ops = ops_lib.XLA_OPS

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, n, d = x.shape
    proj_in = lambda name: dense(d, (ax.EMBED, ax.HEADS), name, self.dtype, self.param_dtype,
                                 self.ops)
    split = lambda t: t.reshape(b, n, self.num_heads, d // self.num_heads)
    dtype = self.dtype or jnp.float32
    q, k, v = (split(proj_in(name)(x)).astype(dtype) for name in ("q", "k", "v"))
    out = self.ops.attention(q, k, v).reshape(b, n, d)
    return dense(d, (ax.HEADS, ax.EMBED), "proj", self.dtype, self.param_dtype, self.ops)(out)
