"""Model registry: `get_model(name, **overrides)` builds any variant by its official name."""

from __future__ import annotations

import dataclasses

from spectralgpt_jax.models.mae import SpectralMAE
from spectralgpt_jax.models.variants import VARIANTS, ModelSpec
from spectralgpt_jax.models.vit import SpectralViT

_SPEC_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}


def get_spec(name: str, **overrides) -> ModelSpec:
  """The ModelSpec of a registered variant, with architecture fields overridden."""
  if name not in VARIANTS:
    raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(VARIANTS))}")
  return dataclasses.replace(VARIANTS[name], **overrides)


def get_model(name: str, **kwargs) -> SpectralMAE | SpectralViT:
  """Builds variant `name`; kwargs may set ModelSpec fields (img_size, num_classes, ...) and
  module fields (dtype, scan, remat, drop_path_rate, pos_embed, pool, ...)."""
  spec = get_spec(name, **{k: v for k, v in kwargs.items() if k in _SPEC_FIELDS})
  module_kwargs = {k: v for k, v in kwargs.items() if k not in _SPEC_FIELDS}
  cls = SpectralMAE if spec.kind == "mae" else SpectralViT
  return cls(spec=spec, **module_kwargs)


__all__ = ["ModelSpec", "SpectralMAE", "SpectralViT", "VARIANTS", "get_model", "get_spec"]
