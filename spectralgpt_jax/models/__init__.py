"""Model registry: `get_model(name, **overrides)` builds any variant by its official name;
`build_model(record)` builds the model a record describes (config.model, a checkpoint's
meta["model"], a manifest's "model"): the one builder every room uses."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax.numpy as jnp
from absl import logging

from spectralgpt_jax.models import ops as ops_lib
from spectralgpt_jax.models import runtime as runtime_lib
from spectralgpt_jax.models.mae import SpectralMAE
from spectralgpt_jax.models.runtime import Runtime
from spectralgpt_jax.models.segmenter import SpectralSegmenter
from spectralgpt_jax.models.variants import VARIANTS, ModelSpec
from spectralgpt_jax.models.vit import SpectralViT

_SPEC_FIELDS = {f.name for f in dataclasses.fields(ModelSpec)}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
# Module fields that change parameters or outputs (beyond ModelSpec); the rest (dtype, scan,
# remat, drop_path_rate, dropout) are runtime knobs.
ARCHITECTURE_KWARGS = ("pos_embed", "pool", "head", "fusion", "feature_layers",
                      "pyramid_channels", "head_channels", "pyramid_groups", "head_groups",
                      "wavelengths", "fwhm")
# Implementations that older configs and checkpoints recorded with the model; now chosen per
# compile target (kernels.select, config.kernels) and never part of a model record.
_IMPLEMENTATION_KEYS = ("attention", "matmul")


def get_spec(name: str, **overrides) -> ModelSpec:
  """The ModelSpec of a registered variant, with architecture fields overridden."""
  if name not in VARIANTS:
    raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(VARIANTS))}")
  return dataclasses.replace(VARIANTS[name], **overrides)


def get_model(name: str, **kwargs) -> SpectralMAE | SpectralViT | SpectralSegmenter:
  """Builds variant `name`; kwargs may set ModelSpec fields (img_size, num_classes, ...),
  Runtime fields (dtype, param_dtype, scan, remat, ops: gathered into `model.runtime`, over
  a `runtime=Runtime(...)` if given) and module fields (drop_path_rate, pos_embed, pool, ...)."""
  spec = get_spec(name, **{k: v for k, v in kwargs.items() if k in _SPEC_FIELDS})
  base = kwargs.pop("runtime", runtime_lib.DEFAULT)  # a whole record, fields below win
  runtime = base.replace(**{k: v for k, v in kwargs.items() if k in runtime_lib.FIELDS})
  module_kwargs = {k: v for k, v in kwargs.items()
                   if k not in _SPEC_FIELDS and k not in runtime_lib.FIELDS}
  cls = {"mae": SpectralMAE, "vit": SpectralViT}.get(spec.kind, SpectralSegmenter)
  return cls(spec=spec, runtime=runtime, **module_kwargs)


def record_kwargs(record: Mapping[str, Any], *, runtime: bool = True) -> dict[str, Any]:
  """get_model kwargs of a model record ({"name", ...}): dtype names stay names (JSON-able),
  implementation keys of older records are dropped; `runtime=False` keeps only what changes
  parameters or outputs (ModelSpec fields, ARCHITECTURE_KWARGS)."""
  if not isinstance(record, Mapping) or "name" not in record:
    raise ValueError(f"model record {dict(record) if isinstance(record, Mapping) else record!r}"
                     " has no 'name'")
  kw = {k: v for k, v in record.items() if k != "name"}
  for key in _IMPLEMENTATION_KEYS:
    if kw.pop(key, None) not in (None, "auto"):
      logging.warning("model record field %r is ignored: implementations are chosen per "
                      "compile target (config.kernels.%s)", key, key)
  if not runtime:
    kw = {k: v for k, v in kw.items() if k in _SPEC_FIELDS or k in ARCHITECTURE_KWARGS}
  if kw.get("dtype") is not None and kw["dtype"] not in DTYPES:
    raise ValueError(f"model dtype must be one of {sorted(DTYPES)}, got {kw['dtype']!r}")
  return kw


def build_model(record: Mapping[str, Any], *, ops: ops_lib.Ops = ops_lib.XLA_OPS,
                runtime: bool = True, **overrides) -> SpectralMAE | SpectralViT:
  """The model a record describes, with the given implementations of its products.

  `runtime=False` builds the architecture only (float32, unrolled: export and inference);
  `overrides` win over the record.
  """
  kw = {**record_kwargs(record, runtime=runtime), **overrides}
  if isinstance(kw.get("dtype"), str):
    kw["dtype"] = DTYPES[kw["dtype"]]
  return get_model(str(record["name"]), ops=ops, **kw)


__all__ = ["ARCHITECTURE_KWARGS", "DTYPES", "build_model", "record_kwargs", "ModelSpec", "Runtime",
           "SpectralMAE", "SpectralSegmenter", "SpectralViT", "VARIANTS", "get_model", "get_spec"]
