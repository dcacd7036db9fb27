"""Multi-head self-attention with separate q, k, v and proj projections (official key names)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.kernels import cpu_attention
from spectralgpt_jax.models.blocked_attention import blocked_attention
from spectralgpt_jax.models.dense import Dense
from spectralgpt_jax.sharding import axis_names as ax

ATTENTION_IMPLS = ("auto", "xla", "blocked", "fused")
# "auto" picks a CPU-specific implementation from this many tokens on (the 128 px decoder: 1024).
LONG_TOKENS = 256


def dense(features: int, axes: tuple[str, str], name: str | None = None, dtype=None,
          param_dtype=jnp.float32, matmul: str = "auto") -> nn.Dense:
  """Linear layer with the official init (xavier_uniform weight, zero bias) and logical axes;
  `matmul` picks its product's implementation (see dense.MATMUL_IMPLS)."""
  return Dense(
      features, dtype=dtype, param_dtype=param_dtype, name=name, impl=matmul,
      kernel_init=nn.with_logical_partitioning(nn.initializers.xavier_uniform(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)))


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """softmax(q k^T / sqrt(d)) v for q, k, v [B, N, H, d] -> [B, N, H, d].

  The scale is folded into q (N*d multiplies instead of N*N); softmax runs in float32. Heads are
  moved before tokens once, so both matmuls batch over (B, H) without per-op transposes.
  """
  q = q * jnp.asarray(q.shape[-1] ** -0.5, q.dtype)
  q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))
  logits = jnp.einsum("bhqd,bhkd->bhqk", q, k, preferred_element_type=jnp.float32)
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  out = jnp.einsum("bhqk,bhkd->bhqd", weights, v, preferred_element_type=jnp.float32)
  return out.transpose(0, 2, 1, 3)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, impl: str = "auto") -> jax.Array:
  """Dispatches to an attention implementation; all compute the same function.

  "auto": on CPU for sequences of LONG_TOKENS or more, the fused C++ kernel where it builds,
  takes the shape and the process has one device (XLA's partitioner cannot split a custom call,
  so under a multi-device jit it would gather the whole batch onto each device), else the
  blocked XLA version; plain XLA attention everywhere else.
  """
  if impl not in ATTENTION_IMPLS:
    raise ValueError(f"attention impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
  if impl == "auto":
    impl = "xla"
    if q.shape[1] >= LONG_TOKENS and jax.default_backend() == "cpu":
      fused = (jax.device_count() == 1 and cpu_attention.supports(q)
               and cpu_attention.available())
      impl = "fused" if fused else "blocked"
  if impl == "fused":
    return cpu_attention.fused_attention(q, k, v)
  return blocked_attention(q, k, v) if impl == "blocked" else dot_product_attention(q, k, v)


class Attention(nn.Module):
  """Global self-attention over all tokens. Input and output [B, N, D].

  Attributes:
    num_heads: heads H (head_dim = D / H).
    impl: "xla" (plain einsum + softmax), "blocked" (cache-blocked, recomputing backward; see
      blocked_attention.py), "fused" (C++ kernel for XLA:CPU, kernels/cpu_attention.py) or
      "auto" (fused, else blocked, on CPU for long sequences; xla otherwise).
    matmul: the projections' matmul implementation (see dense.MATMUL_IMPLS).
  """

  num_heads: int
  dtype: jnp.dtype | None = None
  param_dtype: jnp.dtype = jnp.float32
  impl: str = "auto"
  matmul: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, n, d = x.shape
    proj_in = lambda name: dense(d, (ax.EMBED, ax.HEADS), name, self.dtype, self.param_dtype,
                                 self.matmul)
    split = lambda t: t.reshape(b, n, self.num_heads, d // self.num_heads)
    # The attention matmuls take `dtype` operands (softmax stays float32, see attend).
    dtype = self.dtype or jnp.float32
    q, k, v = (split(proj_in(name)(x)).astype(dtype) for name in ("q", "k", "v"))
    out = attend(q, k, v, self.impl).reshape(b, n, d)
    return dense(d, (ax.HEADS, ax.EMBED), "proj", self.dtype, self.param_dtype,
                 self.matmul)(out)
