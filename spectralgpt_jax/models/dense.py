"""nn.Dense that accumulates low-precision matmuls in float32 and returns the compute dtype."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class Dense(nn.Dense):
  """Same parameters and names as nn.Dense (kernel [in, out], bias [out]).

  With a bfloat16 `dtype` the matmul takes bf16 inputs and accumulates in float32 (on CPU a
  bf16-output matmul is slower than f32; see ../shared/STACK.md section 3), adds the bias in
  float32, then casts back to `dtype` so activations stay bf16 between layers.
  """

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init, (jnp.shape(inputs)[-1], self.features),
                        self.param_dtype)
    dtype = self.dtype or jnp.result_type(inputs, kernel)
    y = jax.lax.dot_general(inputs.astype(dtype), kernel.astype(dtype),
                            (((inputs.ndim - 1,), (0,)), ((), ())), precision=self.precision,
                            preferred_element_type=jnp.float32)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype)
    return y.astype(dtype)
