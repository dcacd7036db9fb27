"""The JSON manifest that travels beside exported weights (`<weights file>.json`).

It says what the tensors are and how to feed them: the variant and the official PyTorch class
and factory that load them with strict=True, image/patch/tubelet size, band names in input
order, normalization statistics with units, the training step and config, and our version.
safetensors files also carry it inside their metadata.

Also here: writing a model record ({"name", fields that differ from the variant}; built back
by `models.build_model`), and the defaults for official checkpoints that come without a manifest.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
from typing import Any, Mapping

from spectralgpt_jax.models import ARCHITECTURE_KWARGS, VARIANTS, get_spec
from spectralgpt_jax.models.variants import ModelSpec
# The format itself (name, version, sidecar path, checks, the official normalization record) is
# shared with the PyTorch package: spectralgpt_jax/weights_format.py.
from spectralgpt_jax.weights_format import (  # noqa: F401  (re-exported names)
    FORMAT, MANIFEST_VERSION, OFFICIAL_NORMALIZATION, check_manifest, find_manifest,
    manifest_path, read_manifest)

TARGETS = ("pretrain", "finetune")
TORCH_MODULES = {"pretrain": "models_mae_spectral.MaskedAutoencoderViT",
                 "finetune": "models_vit_tensor.VisionTransformer"}
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ModelSpec)
                     if f.name not in ("kind", "official_name"))


def package_version() -> str:
  from spectralgpt_jax import __version__  # pylint: disable=g-import-not-at-top
  return __version__


def model_record(name: str, spec: ModelSpec, **module_kwargs) -> dict[str, Any]:
  """{"name", every ModelSpec field that differs from the registered variant, module kwargs}."""
  base = get_spec(name)
  rec: dict[str, Any] = {"name": name}
  for field in _SPEC_FIELDS:
    if base.kind == "vit" and field.startswith("decoder_"):
      continue
    if getattr(spec, field) != getattr(base, field):
      rec[field] = getattr(spec, field)
  rec.update({k: v for k, v in module_kwargs.items() if k in ARCHITECTURE_KWARGS})
  return rec


def variant_for(spec: ModelSpec, kind: str) -> str:
  """The registered variant of `kind` with the same encoder as `spec` (closest in size)."""
  names = [n for n, s in VARIANTS.items() if s.kind == kind and
           (s.embed_dim, s.depth, s.num_heads, s.patch) ==
           (spec.embed_dim, spec.depth, spec.num_heads, spec.patch)]
  if not names:
    raise ValueError(f"no registered {kind} variant has the encoder of {spec}")
  return min(names, key=lambda n: (VARIANTS[n].img_size != spec.img_size,
                                   VARIANTS[n].t_patch != spec.t_patch, n))


def _official_factory(spec: ModelSpec, kind: str) -> tuple[str, dict[str, Any]]:
  """An official factory of `kind` with the same encoder, and the kwargs it needs on top."""
  names = [n for n, s in VARIANTS.items() if s.kind == kind and s.official_name
           and (s.embed_dim, s.depth, s.num_heads, s.patch) ==
           (spec.embed_dim, spec.depth, spec.num_heads, spec.patch)]
  if not names or spec.num_dates != 1:
    return "", {}
  # Prefer the factory needing the fewest overrides.
  def overrides(n: str) -> dict[str, Any]:
    s, out = VARIANTS[n], {}
    if s.img_size != spec.img_size:
      out["img_size"] = spec.img_size
    if s.t_patch != spec.t_patch:
      out["t_patch_size"] = spec.t_patch
    if s.num_bands != spec.num_bands:
      out["num_frames"] = spec.num_bands
    if kind == "vit":
      out["num_classes"] = spec.num_classes
    return out
  best = min(names, key=lambda n: (len(overrides(n)), n))
  return best, overrides(best)


def constructor_kwargs(spec: ModelSpec, target: str) -> dict[str, Any]:
  """Keyword arguments of the official class (see TORCH_MODULES) for this architecture."""
  kw = dict(img_size=spec.img_size, patch_size=spec.patch, in_chans=1,
            embed_dim=spec.embed_dim, depth=spec.depth, num_heads=spec.num_heads,
            mlp_ratio=spec.mlp_ratio, num_frames=spec.num_bands * spec.num_dates,
            t_patch_size=spec.t_patch)
  if target == "pretrain":
    kw.update(decoder_embed_dim=spec.decoder_embed_dim, decoder_depth=spec.decoder_depth,
              decoder_num_heads=spec.decoder_num_heads, pred_t_dim=spec.num_bands)
  else:
    kw.update(num_classes=spec.num_classes)
  if spec.spectral_positions != "table":  # our PyTorch classes only (not the official ones)
    kw["spectral_positions"] = spec.spectral_positions
  return kw


def sha256(path: str | os.PathLike) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 22), b""):
      h.update(chunk)
  return h.hexdigest()


def build_manifest(*, model: Mapping[str, Any], spec: ModelSpec, target: str, bands: list[str],
                   normalization: Mapping[str, Any] | None, step: int | None,
                   config: Mapping[str, Any] | None, weights: Mapping[str, Any],
                   notes: list[str] | None = None, source: str = "") -> dict[str, Any]:
  """The manifest dict (JSON-able). `weights`: format, dtype, num_tensors, num_params..."""
  if target not in TARGETS:
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
  kind = "mae" if target == "pretrain" else "vit"
  factory, factory_kwargs = _official_factory(spec, kind)
  return {
      "format": FORMAT,
      "manifest_version": MANIFEST_VERSION,
      "package": {"name": "spectralgpt_jax", "version": package_version()},
      "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "target": target,
      "torch_module": TORCH_MODULES[target],
      "official_factory": factory,
      "official_factory_kwargs": factory_kwargs,
      "constructor_kwargs": constructor_kwargs(spec, target),
      # The official factories also pass norm_layer=partial(nn.LayerNorm, eps=1e-6); the class
      # default (eps 1e-5) is not what the weights were trained with.
      "layer_norm_eps": 1e-6,
      "variant": model["name"],
      "model": dict(model),
      "image_size": spec.img_size,
      "patch_size": spec.patch,
      "tubelet_size": spec.t_patch,
      "token_grid": list(spec.grid),
      "num_bands": spec.num_bands,
      "bands": list(bands),
      "normalization": dict(normalization) if normalization else None,
      "training_step": step,
      "config": dict(config) if config else None,
      "weights": dict(weights),
      "notes": list(notes or []),
      "source": source,
  }


def write_manifest(manifest: Mapping[str, Any], path: str | os.PathLike) -> pathlib.Path:
  path = pathlib.Path(path)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
  os.replace(tmp, path)
  return path
