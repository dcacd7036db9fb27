"""Parameter counts from shapes alone (jax.eval_shape: no memory, no FLOPs)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.models.variants import ModelSpec


def param_shapes(model: nn.Module) -> dict:
  """Unboxed parameter ShapeDtypeStructs of `model` at its spec's input size."""
  s: ModelSpec = model.spec
  shape = (1, s.num_dates, s.num_bands) if s.num_dates > 1 else (1, s.num_bands)
  x = jnp.zeros(shape + (s.img_size, s.img_size), jnp.float32)
  rngs = {"params": jax.random.key(0), "masking": jax.random.key(0)}
  return jax.eval_shape(lambda: nn.unbox(model.init(rngs, x))["params"])


def count(tree) -> int:
  return sum(int(leaf.size) for leaf in jax.tree.leaves(tree))


def encoder_count(params: dict) -> int:
  """Parameters outside the decoder (excludes decoder_* and mask_token), as the spec counts."""
  return count({k: v for k, v in params.items()
                if not k.startswith("decoder_") and k != "mask_token"})
