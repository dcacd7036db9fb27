"""Dense layer whose `dtype` is the matmul operand precision; everything else stays float32.

Mixed precision here means (as torch autocast does for its linear layers): with a bfloat16
`dtype` the inputs and kernel are cast to bf16 for the matmul, which accumulates in float32, and
the output is float32, so the residual stream, LayerNorm, GELU and softmax run in float32. The
backward matmuls also take bf16 operands (a custom VJP: plain autodiff would promote the f32
cotangent and run them in f32, which measured no faster than f32 training on CPU).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.kernels import cpu_gemm

MATMUL_IMPLS = ("auto", "xla", "blas")


def _dot_last(a: jax.Array, b: jax.Array) -> jax.Array:
  """a [..., k] @ b [k, n] -> [..., n], float32 accumulation."""
  return jax.lax.dot_general(a, b, (((a.ndim - 1,), (0,)), ((), ())),
                             preferred_element_type=jnp.float32)


def _weight_grad(x: jax.Array, g: jax.Array) -> jax.Array:
  """x [..., k], g [..., n] float32 -> x^T g [k, n] over the flattened tokens.

  (Contracting the leading dims of 3-D arrays instead, XLA:CPU copied the cotangent into a
  transposed layout before every weight-gradient dot: 0.12-0.17 s of the base model's f32 step.)
  """
  x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
  return jax.lax.dot_general(x2, g2, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def lowp_matmul(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
  """x [..., k] @ w [k, n] with operands in `dtype`, float32 result; bf16 backward matmuls."""
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
  # Contracting the leading dims here, not flattened as in _weight_grad: with bf16 operands the
  # flattened form measured 4.0 s against 3.1 s per base-model step (interleaved A/B).
  lead = tuple(range(g.ndim - 1))
  dw = jax.lax.dot_general(xl, gl, ((lead, lead), ((), ())), preferred_element_type=jnp.float32)
  return dx.astype(x_carrier.dtype), dw.astype(w_carrier.dtype)


lowp_matmul.defvjp(_lowp_fwd, _lowp_bwd)


@jax.custom_vjp
def f32_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., k] @ w [k, n] in float32; autodiff's values, with the weight gradient taken over
  the flattened tokens (see `_weight_grad`)."""
  return _dot_last(x, w)


def _f32_fwd(x, w):
  return _dot_last(x, w), (x, w)


def _f32_bwd(res, g):
  x, w = res
  dx = jax.lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())),
                           preferred_element_type=jnp.float32)
  return dx, _weight_grad(x, g)


f32_matmul.defvjp(_f32_fwd, _f32_bwd)


def is_low_precision(dtype) -> bool:
  return dtype is not None and jnp.dtype(dtype) != jnp.float32


def check_matmul_impl(impl: str) -> None:
  if impl not in MATMUL_IMPLS:
    raise ValueError(f"matmul impl must be one of {MATMUL_IMPLS}, got {impl!r}")


def uses_blas(impl: str) -> bool:
  """Whether a float32 Dense with matmul `impl` runs through the BLAS kernel.

  "auto": on CPU in a one-device process where the BLAS loads (XLA's partitioner cannot split
  the custom call: under a multi-device jit every device would compute the whole product).
  """
  check_matmul_impl(impl)
  if impl == "auto":
    return (jax.default_backend() == "cpu" and jax.device_count() == 1
            and cpu_gemm.available())
  return impl == "blas"


class Dense(nn.Dense):
  """nn.Dense with the same parameters and names (kernel [in, out], bias [out]).

  float32 (or None) `dtype`: an ordinary float32 Dense, its products in XLA (`f32_matmul`:
  autodiff's values) or the BLAS (`cpu_gemm.matmul`), as `impl` picks ("auto", "xla", "blas";
  see `uses_blas`). Low-precision `dtype`: `lowp_matmul` (always XLA) with a float32 bias add and
  a float32 output (see the module docstring).
  """

  impl: str = "auto"

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    check_matmul_impl(self.impl)  # also for low-precision dtypes, which never use the BLAS
    kernel = self.param("kernel", self.kernel_init, (jnp.shape(inputs)[-1], self.features),
                        self.param_dtype)
    if is_low_precision(self.dtype):
      y = lowp_matmul(inputs, kernel, jnp.dtype(self.dtype))
    elif uses_blas(self.impl):
      y = cpu_gemm.matmul(inputs, kernel)
    else:
      y = f32_matmul(inputs.astype(jnp.float32), kernel.astype(jnp.float32))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype)
    return y
