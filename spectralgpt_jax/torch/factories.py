"""Models by name: the official factories (and our tiny test variants) built from the one
variant table, `spectralgpt_jax/models/variants.py`.

That file imports only the standard library; it is read here as a file (not through the
`spectralgpt_jax.models` package, which imports jax), so the PyTorch package installs and
imports without jax while the sizes stay written once.
"""

from __future__ import annotations

import functools
import pathlib
from typing import Any, Mapping

from spectralgpt_jax.torch import spectral
from spectralgpt_jax.torch.mae import MaskedAutoencoderViT
from spectralgpt_jax.torch.vit import VisionTransformer

_VARIANTS_FILE = pathlib.Path(__file__).resolve().parents[1] / "models" / "variants.py"
KINDS = {"mae": MaskedAutoencoderViT, "vit": VisionTransformer}


@functools.lru_cache(maxsize=None)
def variant_table() -> Mapping[str, Any]:
  """{name: ModelSpec} of the MAE and ViT variants, read from models/variants.py."""
  module = spectral.load_file_as_module(_VARIANTS_FILE, "spectralgpt_jax.torch._variants")
  return {n: s for n, s in module.VARIANTS.items() if s.kind in KINDS}


def model_names(kind: str | None = None) -> list[str]:
  """Registered variant names (of one kind: "mae" or "vit")."""
  return sorted(n for n, s in variant_table().items() if kind in (None, s.kind))


def constructor_kwargs(spec: Any) -> dict[str, Any]:
  """The module's constructor kwargs for a variant's ModelSpec (a series folds into bands)."""
  kw = dict(img_size=spec.img_size, patch_size=spec.patch, embed_dim=spec.embed_dim,
            depth=spec.depth, num_heads=spec.num_heads, mlp_ratio=spec.mlp_ratio,
            num_frames=spec.num_bands * spec.num_dates, t_patch_size=spec.t_patch)
  if spec.kind == "mae":
    kw.update(decoder_embed_dim=spec.decoder_embed_dim, decoder_depth=spec.decoder_depth,
              decoder_num_heads=spec.decoder_num_heads)
  else:
    kw["num_classes"] = spec.num_classes
  return kw


def create_model(name: str, **overrides) -> MaskedAutoencoderViT | VisionTransformer:
  """A freshly initialised model of variant `name` (e.g. "mae_vit_base_patch8_128",
  "vit_base_patch8_128"); `overrides` are constructor kwargs (img_size, num_classes, ...)."""
  table = variant_table()
  if name not in table:
    raise KeyError(f"unknown model {name!r}; known: {', '.join(model_names())}")
  overrides.pop("mask_ratio", None)     # the official factories accept and ignore it
  spec = table[name]
  return KINDS[spec.kind](**{**constructor_kwargs(spec), **overrides})
