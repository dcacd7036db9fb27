"""How a model runs, as one frozen record: compute and parameter dtypes, layer scanning,
rematerialisation and the implementations of its products.

None of these change the parameter tree or the function computed (up to float rounding of a
low-precision `dtype`); the architecture is `variants.ModelSpec` plus the modules' own fields.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from spectralgpt_jax.models import ops as ops_lib

FIELDS = ("dtype", "param_dtype", "scan", "remat", "ops")


@dataclasses.dataclass(frozen=True)
class Runtime:
  """Attributes:
    dtype: matmul operand dtype (float32, or bfloat16 with float32 accumulation; see
      `dense_layer.Dense`); LayerNorm, softmax, GELU and the residual stream stay float32.
    param_dtype: dtype of the parameters.
    scan: run each block stack under nn.scan (params stacked on axis "layers").
    remat: rematerialisation policy of the block stacks (`transformer.REMAT_POLICIES`).
    ops: implementations of the float32 matmuls and of attention (`ops.Ops`).
  """

  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  scan: bool = False
  remat: str = "none"
  ops: ops_lib.Ops = ops_lib.XLA_OPS

  def replace(self, **changes) -> "Runtime":
    return dataclasses.replace(self, **changes)


DEFAULT = Runtime()


class RuntimeFields:
  """Read-only views of a module's `runtime` record (model.dtype, model.ops, ...)."""

  dtype = property(lambda self: self.runtime.dtype)
  param_dtype = property(lambda self: self.runtime.param_dtype)
  scan = property(lambda self: self.runtime.scan)
  remat = property(lambda self: self.runtime.remat)
  ops = property(lambda self: self.runtime.ops)
