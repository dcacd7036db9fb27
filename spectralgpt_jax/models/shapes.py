"""Abstract inputs and parameter shapes (jax.eval_shape: no memory, no FLOPs), and counts.

  abstract_input(spec)     ShapeDtypeStruct of one input cube batch
  param_shapes(model)      unboxed param ShapeDtypeStructs of `model`
  init_params(model)       unboxed initial params of `model` (jitted init)
  count / encoder_count    parameter counts of a (shape) tree
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.models.variants import ModelSpec


def abstract_input(spec: ModelSpec, batch: int = 1, image_size: int | None = None,
                   bands: int | None = None) -> jax.ShapeDtypeStruct:
  """Abstract float32 cube [B, C, S, S], or [B, T, C, S, S] when spec.num_dates > 1; C =
  `bands` (default spec.num_bands)."""
  size = image_size or spec.img_size
  dates = (spec.num_dates,) if spec.num_dates > 1 else ()
  return jax.ShapeDtypeStruct((batch, *dates, bands or spec.num_bands, size, size), jnp.float32)


def input_bands(model: nn.Module) -> int:
  """Input planes of `model`: those of the band set a dense model was built for
  (`wavelengths=`), else spec.num_bands."""
  fixed = getattr(model, "wavelengths", None)
  return len(fixed) if fixed is not None else model.spec.num_bands


def abstract_inputs(spec: ModelSpec, batch: int = 1, image_size: int | None = None,
                    bands: int | None = None) -> tuple[jax.ShapeDtypeStruct, ...]:
  """The model's positional inputs: (cube,), or (cube, cube2) for a change-detection model."""
  x = abstract_input(spec, batch, image_size, bands)
  return (x, x) if spec.kind == "change" else (x,)


def param_shapes(model: nn.Module, image_size: int | None = None) -> dict:
  """Unboxed parameter ShapeDtypeStructs of `model` for its spec's input (or `image_size`)."""
  xs = abstract_inputs(model.spec, 1, image_size, input_bands(model))
  rngs = {"params": jax.random.key(0), "masking": jax.random.key(1)}
  return jax.eval_shape(lambda *xs: nn.unbox(model.init(rngs, *xs))["params"], *xs)


def init_params(model: nn.Module, *inputs, seed: int = 0) -> dict:
  """Unboxed initial params of `model` (rng streams "params" = seed, "masking" = seed + 1),
  initialised on `inputs` (default: zero cubes of its spec's input, batch 1). The values depend
  on the inputs' shapes only."""
  if not inputs:
    inputs = tuple(jnp.zeros(x.shape, x.dtype)
                   for x in abstract_inputs(model.spec, bands=input_bands(model)))
  rngs = {"params": jax.random.key(seed), "masking": jax.random.key(seed + 1)}
  kwargs = {"mask_ratio": 0.9} if model.spec.kind == "mae" else {}
  return nn.unbox(jax.jit(lambda *xs: model.init(rngs, *xs, **kwargs))(*inputs))["params"]


def count(tree) -> int:
  """Number of scalars in all leaves of `tree` (arrays or ShapeDtypeStructs)."""
  return sum(int(leaf.size) for leaf in jax.tree.leaves(tree))


# Top-level parameters of a dense model's head (models/segmenter.py).
DENSE_HEAD = ("fc", "pyramid", "neck", "decoder", "cls_seg")


def encoder_count(params: dict) -> int:
  """Parameters outside the decoder (excludes decoder_*, mask_token and a dense model's head),
  as the spec counts."""
  return count({k: v for k, v in params.items()
                if not k.startswith("decoder_") and k != "mask_token" and k not in DENSE_HEAD})
