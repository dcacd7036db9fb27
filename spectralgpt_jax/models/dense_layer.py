"""Dense layer whose `dtype` is the matmul operand precision; everything else stays float32.

Mixed precision here means (as torch autocast does for its linear layers): with a bfloat16
`dtype` the inputs and kernel are cast to bf16 for the matmul, which accumulates in float32, and
the output is float32, so the residual stream, LayerNorm, GELU and softmax run in float32 (see
`ops.lowp_matmul`). float32 products run through `ops.matmul`, whichever implementation the
program was built with (`ops.Ops`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.models import ops as ops_lib


class Dense(nn.Module):
  """y = x @ kernel + bias, kernel [in, out] and bias [out] (the names and layout of nn.Dense).

  Attributes:
    features: output width.
    use_bias: whether to add a bias.
    dtype: matmul operand dtype (None or float32: float32 products through `ops.matmul`;
      bfloat16: `ops_lib.lowp_matmul`); the output is float32 either way.
    param_dtype: dtype of kernel and bias.
    kernel_init, bias_init: initializers (with logical axis names).
    ops: implementations of the model's products (ops.Ops).
  Input [..., in]; output [..., features] float32.
  """

  features: int
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros
  ops: ops_lib.Ops = ops_lib.XLA_OPS

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (jnp.shape(inputs)[-1], self.features),
                        self.param_dtype)
    if ops_lib.is_low_precision(self.dtype):
      y = ops_lib.lowp_matmul(inputs, kernel, jnp.dtype(self.dtype))
    else:
      y = self.ops.matmul(inputs.astype(jnp.float32), kernel.astype(jnp.float32))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype)
    return y
