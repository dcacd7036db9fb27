"""Fused softmax attention for XLA:CPU through the XLA FFI (kernel: cpu_attention.cc).

The C++ source is compiled with the package's other kernels (build.py) when
`kernels.select.ops_for` (or `build.register()`) asks, never at import or while tracing.

`fused_attention(q, k, v)` takes q, k, v [B, N, H, D] (any float dtype; the kernel computes in
float32) and has a custom VJP: the forward saves only the output and the per-query log-sum-exp,
and the backward recomputes the probabilities block by block (FlashAttention's recipe on CPU
cache blocks). XLA's partitioner cannot split the custom call: under a jit that shards its
inputs they are gathered and every device runs the whole batch (correct, not parallel), so
kernels.select uses the kernel only in one-device programs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from spectralgpt_jax.kernels import build

HEAD_DIMS = (32, 64)
KernelBuildError = build.KernelBuildError
available = build.available


def supports(q: jax.Array) -> bool:
  """Shapes the kernel takes: [B, N, H, D] with D in HEAD_DIMS and N a multiple of 16."""
  return q.ndim == 4 and q.shape[-1] in HEAD_DIMS and q.shape[1] % 16 == 0


def _forward(q, k, v):
  b, n, h, d = q.shape
  f32 = lambda t: t.astype(jnp.float32)
  out, lse = jax.ffi.ffi_call(
      "spectralgpt_attention_forward",
      (jax.ShapeDtypeStruct(q.shape, jnp.float32), jax.ShapeDtypeStruct((b, h, n), jnp.float32)),
  )(f32(q), f32(k), f32(v), scale=np.float32(d ** -0.5))
  return out, lse


@jax.custom_vjp
def _fused(q, k, v):
  return _forward(q, k, v)[0].astype(q.dtype)


def _fused_fwd(q, k, v):
  out, lse = _forward(q, k, v)
  return out.astype(q.dtype), (q, k, v, out, lse)


def _fused_bwd(res, g):
  q, k, v, out, lse = res
  shape = jax.ShapeDtypeStruct(q.shape, jnp.float32)
  f32 = lambda t: t.astype(jnp.float32)
  dq, dk, dv = jax.ffi.ffi_call("spectralgpt_attention_backward", (shape, shape, shape))(
      f32(q), f32(k), f32(v), out, lse, f32(g), scale=np.float32(q.shape[-1] ** -0.5))
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


_fused.defvjp(_fused_fwd, _fused_bwd)


@functools.partial(jax.named_call, name="fused_cpu_attention")
def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """softmax(q k^T / sqrt(d)) v for q, k, v [B, N, H, D] -> [B, N, H, D], on XLA:CPU.

  Raises KernelBuildError unless the kernels were built (build.register()), ValueError for
  shapes it does not take (see `supports`).
  """
  if not supports(q):
    raise ValueError(f"fused CPU attention takes [B, N, H, D] with D in {HEAD_DIMS} and N % 16 "
                     f"== 0, got {q.shape}")
  build.require_registered()
  return _fused(q, k, v)
