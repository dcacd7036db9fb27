"""Pre-norm transformer blocks and a stack of them (unrolled, or scanned with rematerialisation).

Parameter layout of a stack named S with depth N:
  unrolled: S/layers_0 ... S/layers_{N-1}, each a Block      (official blocks.0 ... blocks.N-1)
  scanned:  S/layers with a leading [N] axis on every leaf   (logical axis "layers")
`to_scanned` / `to_unrolled` convert between the two, so checkpoints and exports work either way.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from spectralgpt_jax.models import ops as ops_lib
from spectralgpt_jax.models.attention import Attention, dense
from spectralgpt_jax.models.runtime import DEFAULT, Runtime
from spectralgpt_jax.sharding import axis_names as ax

LN_EPS = 1e-6  # every official LayerNorm


def layer_norm(name: str | None = None, dtype=None, param_dtype=jnp.float32) -> nn.LayerNorm:
  """LayerNorm (eps 1e-6), always computed in float32: `dtype` only sets matmul precision."""
  del dtype
  return nn.LayerNorm(
      epsilon=LN_EPS, dtype=jnp.float32, param_dtype=param_dtype, name=name,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, (ax.EMBED,)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (ax.EMBED,)))


def gelu(x: jax.Array) -> jax.Array:
  """Exact GELU, x * Phi(x), in torch's erf form 0.5 x (1 + erf(x / sqrt 2)).

  jax.nn.gelu(approximate=False) evaluates erfc, whose float32 lowering is piecewise; erf is a
  single rational approximation (faster forward + backward on CPU, BENCHMARKS.md) and is the
  form the official (torch nn.GELU) computes. Differences are below 1e-6.
  """
  return x * (0.5 * (1.0 + jax.lax.erf(x * jnp.asarray(2 ** -0.5, x.dtype))))


class Mlp(nn.Module):
  """fc1 -> exact (erf) GELU -> fc2, hidden width `hidden`. [B, N, D] -> [B, N, D]."""

  hidden: int
  dtype: Any = None
  param_dtype: Any = jnp.float32
  ops: ops_lib.Ops = ops_lib.XLA_OPS

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    h = dense(self.hidden, (ax.EMBED, ax.MLP), "fc1", self.dtype, self.param_dtype, self.ops)(x)
    h = gelu(h)
    return dense(d, (ax.MLP, ax.EMBED), "fc2", self.dtype, self.param_dtype, self.ops)(h)


def drop_path(x: jax.Array, rate: jax.Array | float, rng: jax.Array) -> jax.Array:
  """Stochastic depth: zero whole examples of a residual branch with probability `rate`."""
  keep = 1.0 - rate
  mask = jax.random.bernoulli(rng, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
  return jnp.where(mask, x / keep, 0).astype(x.dtype)


class Block(nn.Module):
  """x + attn(norm1(x)), then x + mlp(norm2(x)); optional drop path on both branches.

  Attributes:
    num_heads, mlp_ratio: attention heads and MLP expansion.
    use_drop_path: static switch; the per-layer rate itself is a call argument so a scanned
      stack can carry different rates per layer (linspace(0, rate, depth) as the official).
  """

  num_heads: int
  mlp_ratio: float = 4.0
  use_drop_path: bool = False
  dtype: Any = None
  param_dtype: Any = jnp.float32
  ops: ops_lib.Ops = ops_lib.XLA_OPS

  @nn.compact
  def __call__(self, x: jax.Array, drop_rate: jax.Array | float = 0.0) -> jax.Array:
    d = x.shape[-1]
    branch = lambda y: drop_path(y, drop_rate, self.make_rng("dropout")) if self.use_drop_path else y
    x = nn.with_logical_constraint(x, ax.RESIDUAL)
    y = layer_norm("norm1", self.dtype, self.param_dtype)(x)
    x = x + branch(Attention(self.num_heads, self.dtype, self.param_dtype, self.ops,
                             name="attn")(y))
    x = nn.with_logical_constraint(x, ax.RESIDUAL)
    y = layer_norm("norm2", self.dtype, self.param_dtype)(x)
    x = x + branch(Mlp(int(d * self.mlp_ratio), self.dtype, self.param_dtype, self.ops,
                       name="mlp")(y))
    return nn.with_logical_constraint(x, ax.RESIDUAL)


REMAT_POLICIES = {
    "none": None,  # no rematerialisation
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}


class TransformerStack(nn.Module):
  """`depth` Blocks in sequence. [B, N, D] -> [B, N, D].

  Attributes:
    drop_path_rates: per-layer stochastic depth rates (len == depth); all zero disables it.
    runtime: dtypes and implementations of the blocks; `runtime.scan` runs them under nn.scan
      (one compiled block, params stacked on axis "layers"), `runtime.remat` names one of
      REMAT_POLICIES.
  """

  depth: int
  num_heads: int
  mlp_ratio: float = 4.0
  drop_path_rates: Sequence[float] = ()
  runtime: Runtime = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array, *, deterministic: bool = True,
               collect: Sequence[int] = ()) -> jax.Array | tuple[jax.Array, list[jax.Array]]:
    """Runs the blocks; with `collect` (0-based block indices) also returns the output of each
    of those blocks: (x, [x_i for i in collect])."""
    rates = tuple(self.drop_path_rates) or (0.0,) * self.depth
    bad = [i for i in collect if not 0 <= i < self.depth]
    if bad:
      raise ValueError(f"collect {list(collect)}: blocks {bad} outside 0..{self.depth - 1}")
    if len(rates) != self.depth:
      raise ValueError(f"{len(rates)} drop-path rates for {self.depth} layers")
    rt = self.runtime
    if rt.remat not in REMAT_POLICIES:
      raise ValueError(f"remat must be one of {sorted(REMAT_POLICIES)}, got {rt.remat!r}")
    block_cls = Block
    if rt.remat != "none":
      block_cls = nn.remat(Block, policy=REMAT_POLICIES[rt.remat], prevent_cse=not rt.scan)
    kw = dict(num_heads=self.num_heads, mlp_ratio=self.mlp_ratio, dtype=rt.dtype,
              param_dtype=rt.param_dtype, ops=rt.ops,
              use_drop_path=not deterministic and any(r > 0 for r in rates))
    if not rt.scan:
      outs = []
      for i, rate in enumerate(rates):
        x = block_cls(**kw, name=f"layers_{i}")(x, rate)
        outs.append(x)
      return (x, [outs[i] for i in collect]) if collect else x

    def body(block, carry, rate):
      y = block(carry, rate)
      return y, (y if collect else None)

    stack = nn.scan(body, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
                    length=self.depth, metadata_params={nn.PARTITION_NAME: ax.LAYERS})
    x, every = stack(block_cls(**kw, name="layers"), x, jnp.asarray(rates, jnp.float32))
    return (x, [every[i] for i in collect]) if collect else x


# ---------------------------------------------------------------------------------------------
# Scanned <-> unrolled parameter layouts.

STACKS = ("blocks", "decoder_blocks")


def is_scanned(params: dict) -> bool:
  """Whether a block stack of `params` is stacked by nn.scan (`<stack>/layers/...`)."""
  return any("layers" in params.get(name, {}) for name in STACKS)


def to_unrolled(params: dict) -> dict:
  """Returns params with every scanned stack split into layers_0..layers_{N-1} (a new dict)."""
  out = dict(params)
  for name in STACKS:
    if name in out and is_scanned({name: out[name]}):
      stacked = out[name]["layers"]
      depth = jax.tree.leaves(stacked)[0].shape[0]
      out[name] = {f"layers_{i}": jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(depth)}
  return out


def to_scanned(params: dict) -> dict:
  """Returns params with every unrolled stack stacked into `layers` (a new dict)."""
  out = dict(params)
  for name in STACKS:
    if name in out and not is_scanned({name: out[name]}):
      layers = [out[name][f"layers_{i}"] for i in range(len(out[name]))]
      stack = np.stack if isinstance(jax.tree.leaves(layers)[0], np.ndarray) else jnp.stack
      out[name] = {"layers": jax.tree.map(lambda *a: stack(a), *layers)}
  return out
