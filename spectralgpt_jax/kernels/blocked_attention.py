"""Memory-blocked exact attention for long sequences on CPU (the MAE decoder sees all tokens).

The decoder of the 128 px model attends over 1024 tokens with 32-dim heads: the logits of one
layer are B x 16 x 1024 x 1024 floats, far larger than cache, and autodiff would also keep the
probabilities for the backward pass. Here the B*H independent attention problems are processed
a few at a time (lax.map), so each block's logits stay in cache, and a custom VJP saves only the
output and the log-sum-exp: the backward recomputes exp(s - lse) per block (the FlashAttention
recipe, arranged for CPU blocks rather than GPU tiles). Results equal plain softmax attention up
to float rounding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

# Aim for ~4 MiB of float32 logits per block: in L2/L3 on current server CPUs.
_BLOCK_BYTES = 4 << 20


def _dot(spec: str, a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.einsum(spec, a, b, preferred_element_type=jnp.float32)


def _forward_block(q, k, v):
  """q, k, v [G, N, d] (q pre-scaled) -> out [G, N, d] float32, lse [G, N] float32."""
  s = _dot("gqd,gkd->gqk", q, k)
  m = s.max(axis=-1, keepdims=True)
  p = jnp.exp(s - m)
  total = p.sum(axis=-1, keepdims=True)
  out = _dot("gqk,gkd->gqd", p.astype(v.dtype), v) / total
  return out, (m + jnp.log(total))[..., 0]


def _swap(t: jax.Array) -> jax.Array:
  return jnp.swapaxes(t, -1, -2)


# Loop bodies return float32 and the casts happen once, outside lax.map: a cast fused into the
# loop's dynamic-update-slice made XLA:CPU rewrite the whole stacked output every iteration.
@jax.custom_vjp
def _blocked(q, k, v):
  return lax.map(lambda a: _forward_block(*a)[0], (q, k, v)).astype(q.dtype)


def _blocked_fwd(q, k, v):
  out, lse = lax.map(lambda a: _forward_block(*a), (q, k, v))
  out = out.astype(q.dtype)
  return out, (q, k, v, out, lse)


def _blocked_bwd(res, g_out):
  def block(args):
    q, k, v, out, lse, g = args
    # Work on the transposed logits [G, keys, queries]: dv = p^T g and dk = ds^T q then use the
    # matmul layout the fast kernel takes; only dq needs ds itself, one explicit transpose
    # (measured faster per layer than the [q, k] orientation, in f32 and more in bf16;
    # BENCHMARKS.md).
    p_t = jnp.exp(_dot("gkd,gqd->gkq", k, q) - lse[:, None, :])
    dp_t = _dot("gkd,gqd->gkq", v, g)
    delta = jnp.sum(g.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)
    ds_t = p_t * (dp_t - delta[:, None, :])
    dv = _dot("gkq,gqd->gkd", p_t.astype(g.dtype), g)
    dk = _dot("gkq,gqd->gkd", ds_t.astype(q.dtype), q)
    dq = _dot("gqk,gkd->gqd", _swap(ds_t).astype(q.dtype), k)
    return dq, dk, dv

  q, k, v = res[:3]
  dq, dk, dv = lax.map(block, (*res, g_out))
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


_blocked.defvjp(_blocked_fwd, _blocked_bwd)


def _block_size(problems: int, length: int) -> int:
  """Largest divisor of `problems` whose logits block fits _BLOCK_BYTES (at least 1)."""
  target = max(1, _BLOCK_BYTES // (4 * length * length))
  return max(g for g in range(1, min(target, problems) + 1) if problems % g == 0)


@functools.partial(jax.named_call, name="blocked_attention")
def blocked_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """softmax(q k^T / sqrt(d)) v for q, k, v [B, N, H, d] -> [B, N, H, d], blocked over B*H."""
  b, n, h, d = q.shape
  g = _block_size(b * h, n)

  def blocks(t):  # [B, N, H, d] -> [B*H/g, g, N, d]
    return t.transpose(0, 2, 1, 3).reshape(b * h // g, g, n, d)

  out = _blocked(blocks(q * jnp.asarray(d ** -0.5, q.dtype)), blocks(k), blocks(v))
  return out.reshape(b, h, n, d).transpose(0, 2, 1, 3)
