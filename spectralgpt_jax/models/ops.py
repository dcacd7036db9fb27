"""The model's replaceable products: float32 matmuls and softmax attention, as one frozen object.

Layers compute *what* (shapes, dtypes, the function itself); an `Ops` says *how* the two hot
products run. Every implementation computes the same function, so a model's parameters and
outputs never depend on the choice. The default, `XLA_OPS`, is plain XLA and compiles for any
platform. Others (the CPU FFI kernels) are chosen once, outside the model, from the platform of
the devices a program is compiled for: see `spectralgpt_jax.kernels.select.ops_for`. This module
imports no kernel.

Contracts:
  matmul(x [..., k], w [k, n]) -> [..., n] float32, for float32 operands (low-precision layers
    always use `lowp_matmul`, whose numerics are part of the model).
  attention(q, k, v [B, N, H, d]) -> [B, N, H, d] in q's dtype: softmax(q k^T / sqrt(d)) v with
    a float32 softmax.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp

Matmul = Callable[[jax.Array, jax.Array], jax.Array]
AttentionFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def _dot_last(a: jax.Array, b: jax.Array) -> jax.Array:
  """a [..., k] @ b [k, n] -> [..., n], float32 accumulation."""
  return jax.lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())),
                             preferred_element_type=jnp.float32)


@jax.custom_vjp
def xla_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., k] @ w [k, n] in float32 with autodiff's values; the weight gradient contracts the
  flattened tokens (contracting the leading dims of 3-D arrays, XLA:CPU copied the cotangent
  into a transposed layout before every weight-gradient dot; BENCHMARKS.md, History: weight gradients over flattened tokens)."""
  return _dot_last(x, w)


def _xla_matmul_fwd(x, w):
  return _dot_last(x, w), (x, w)


def _xla_matmul_bwd(res, g):
  x, w = res
  dx = jax.lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())),
                           preferred_element_type=jnp.float32)
  x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
  dw = jax.lax.dot_general(x2, g2, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
  return dx, dw


xla_matmul.defvjp(_xla_matmul_fwd, _xla_matmul_bwd)


def xla_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """softmax(q k^T / sqrt(d)) v for q, k, v [B, N, H, d] -> [B, N, H, d] (reference version).

  The scale is folded into q (N*d multiplies instead of N*N); softmax runs in float32. Heads are
  moved before tokens once, so both matmuls batch over (B, H) without per-op transposes.
  """
  q = q * jnp.asarray(q.shape[-1] ** -0.5, q.dtype)
  q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))
  logits = jnp.einsum("bhqd,bhkd->bhqk", q, k, preferred_element_type=jnp.float32)
  weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
  out = jnp.einsum("bhqk,bhkd->bhqd", weights, v, preferred_element_type=jnp.float32)
  return out.transpose(0, 2, 1, 3).astype(q.dtype)


@dataclasses.dataclass(frozen=True)
class Ops:
  """Implementations of the model's float32 matmuls and its attention (see module docstring).

  Attributes:
    matmul: float32 products of every Dense layer.
    attention: the attention function of every Attention layer.
    name: what was chosen, for logs ("xla", "cpu: fused attention >= 256 tokens, ...").
  Frozen and built from module-level functions, so equal choices compare and hash equal (Flax
  module fields).
  """

  matmul: Matmul = xla_matmul
  attention: AttentionFn = xla_attention
  name: str = "xla"


XLA_OPS = Ops()


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def lowp_matmul(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
  """x [..., k] @ w [k, n] with operands in `dtype` (bf16), float32 result; bf16 backward matmuls.

  Mixed precision as torch autocast does it for linear layers: operands are cast, products
  accumulate in float32 and come out float32. Plain autodiff would promote the float32 cotangent
  and run the backward matmuls in float32, which measured no faster than float32 training.
  """
  return _dot_last(x.astype(dtype), w.astype(dtype))


def _lowp_fwd(x, w, dtype):
  xl, wl = x.astype(dtype), w.astype(dtype)
  # Zero-size carriers remember the primal dtypes for the cotangents.
  return _dot_last(xl, wl), (xl, wl, jnp.zeros((0,), x.dtype), jnp.zeros((0,), w.dtype))


def _lowp_bwd(dtype, res, g):
  xl, wl, x_carrier, w_carrier = res
  gl = g.astype(dtype)
  dx = jax.lax.dot_general(gl, wl, (((g.ndim - 1,), (1,)), ((), ())),
                           preferred_element_type=jnp.float32)
  # Contracting the leading dims (not the flattened tokens as in xla_matmul): with bf16
  # operands that measured faster (BENCHMARKS.md, History: weight gradients over flattened tokens).
  lead = tuple(range(g.ndim - 1))
  dw = jax.lax.dot_general(xl, gl, ((lead, lead), ((), ())), preferred_element_type=jnp.float32)
  return dx.astype(x_carrier.dtype), dw.astype(w_carrier.dtype)


lowp_matmul.defvjp(_lowp_fwd, _lowp_bwd)


def is_low_precision(dtype) -> bool:
  return dtype is not None and jnp.dtype(dtype) != jnp.float32
