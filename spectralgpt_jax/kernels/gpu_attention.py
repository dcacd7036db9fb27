"""NVIDIA GPU attention: cuDNN flash attention through `jax.nn.dot_product_attention`.

`cudnn_attention(q, k, v [B, N, H, d]) -> [B, N, H, d]` computes what `ops.xla_attention` does
(scale 1/sqrt(d), non-causal, float32 softmax inside cuDNN) as the `__cudnn$fmha*` custom calls,
forward and backward, without materialising the [B, H, N, N] logits. jax partitions the call
over batch and heads itself (custom partitioning). cuDNN takes fp16/bf16 operands with a head
dim that is a multiple of 8 and at most 128 (256 on Hopper; 128 is asked here so the choice
does not depend on the GPU generation); anything else (float32 models) goes to XLA. The choice
is static, from shape and dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from spectralgpt_jax.models import ops as ops_lib

DTYPES = (jnp.bfloat16, jnp.float16)
MAX_HEAD_DIM = 128


def supports(q: jax.Array) -> bool:
  """Whether cuDNN flash attention takes q [B, N, H, d] of this dtype (static). An odd N is
  refused in training (jax's cuDNN check: sequence lengths divisible by 2), e.g. the 1,919
  kept tokens of a 224-band input at mask ratio 0.9: XLA attention then."""
  d = q.shape[-1]
  return (q.ndim == 4 and q.dtype in DTYPES and d % 8 == 0 and d <= MAX_HEAD_DIM
          and q.shape[1] % 2 == 0)


def cudnn_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """q, k, v [B, N, H, d] -> [B, N, H, d]: cuDNN where `supports(q)`, else xla_attention."""
  if not supports(q) or k.dtype != q.dtype or v.dtype != q.dtype:
    return ops_lib.xla_attention(q, k, v)
  return jax.nn.dot_product_attention(q, k, v, implementation="cudnn").astype(q.dtype)
