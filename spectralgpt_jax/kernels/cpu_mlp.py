"""The transformer MLP, fc1 -> exact GELU -> fc2, with GELU fused into fc1 on XLA:CPU.

`fused_mlp(x, w1, b1, w2, b2)` = gelu(x @ w1 + b1) @ w2 + b2 for x [..., D], float32. The C++
kernel (cpu_mlp.cc, built on first use with the package's other kernels, see build.py) computes
fc1 with the bias and GELU applied to each output tile while it is in registers, and in the
backward the gradient through fc2's input times GELU's derivative the same way; fc2 and the
weight gradients stay XLA dots. A custom VJP saves fc1's pre-activation and the GELU output
(what autodiff of the XLA version keeps too).

As with the fused attention, XLA's partitioner cannot split the custom call, so mlp="auto" uses
it only in one-device processes, and only for float32 compute.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from spectralgpt_jax.kernels import build

available = build.available


def _dot(a: jax.Array, b: jax.Array, contract: tuple[int, int]) -> jax.Array:
  return jax.lax.dot_general(a, b, (((contract[0],), (contract[1],)), ((), ())),
                             preferred_element_type=jnp.float32)


def _fc1_gelu(x2, w1, b1):
  shape = jax.ShapeDtypeStruct((x2.shape[0], w1.shape[1]), jnp.float32)
  return jax.ffi.ffi_call("spectralgpt_mlp_forward", (shape, shape))(x2, w1, b1)


@jax.custom_vjp
def _mlp(x2, w1, b1, w2, b2):
  return _fc1_gelu(x2, w1, b1)[1] @ w2 + b2


def _mlp_fwd(x2, w1, b1, w2, b2):
  pre, h = _fc1_gelu(x2, w1, b1)
  return h @ w2 + b2, (x2, w1, w2, pre, h)


def _mlp_bwd(res, g):
  x2, w1, w2, pre, h = res
  dw2 = _dot(h, g, (0, 0))
  dpre = jax.ffi.ffi_call("spectralgpt_mlp_backward", jax.ShapeDtypeStruct(pre.shape,
                                                                            jnp.float32))(
      g, w2.T, pre)
  dw1 = _dot(x2, dpre, (0, 0))
  dx = _dot(dpre, w1, (1, 1))
  return dx, dw1, dpre.sum(0), dw2, g.sum(0)


_mlp.defvjp(_mlp_fwd, _mlp_bwd)


@functools.partial(jax.named_call, name="fused_cpu_mlp")
def fused_mlp(x: jax.Array, w1: jax.Array, b1: jax.Array, w2: jax.Array,
              b2: jax.Array) -> jax.Array:
  """gelu(x @ w1 + b1) @ w2 + b2: x [..., D], w1 [D, F], b1 [F], w2 [F, D], b2 [D] -> [..., D].

  Computes in float32 (other dtypes are cast); raises KernelBuildError where the kernels cannot
  be built.
  """
  build.register()
  f32 = lambda t: jnp.asarray(t, jnp.float32)
  out = _mlp(f32(x).reshape(-1, x.shape[-1]), f32(w1), f32(b1), f32(w2), f32(b2))
  return out.reshape(*x.shape[:-1], w2.shape[1]).astype(x.dtype)
