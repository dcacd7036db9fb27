"""Export: orbax checkpoint (any sharding, scanned or unrolled) -> official PyTorch weights.

  export_checkpoint(ckpt_dir, out)   read params on the host, map, check, write file + manifest
  export_params(params, spec, ...)   the pure part: Flax params -> official state_dict

Targets:
  pretrain  the official MAE `models_mae_spectral.MaskedAutoencoderViT` (needs an MAE).
  finetune  the official classifier `models_vit_tensor.VisionTransformer`: encoder only, with
            its single `pos_embed` = spatial + spectral tables (posembed.combine); the head is
            ours for a ViT, zeros for an MAE (train it). The official class pools tokens 1..L-1;
            the manifest records which pooling our model used.
The expected key set and shapes come from our model definitions (jax.eval_shape, no FLOPs);
any difference raises `ExportError` listing missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from flax import traverse_util

from data_pipelines.schema import SPECTRALGPT_BANDS
from spectralgpt_jax import checkpoints
from spectralgpt_jax.export import manifest as manifest_lib, param_mapping, torch_io
from spectralgpt_jax import models
from spectralgpt_jax.models import SpectralMAE, SpectralViT, posembed
from spectralgpt_jax.models.shapes import param_shapes
from spectralgpt_jax.models.transformer import to_unrolled
from spectralgpt_jax.models.variants import ModelSpec

FORMATS = ("pth", "safetensors")
DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}
_DECODER = ("mask_token", "decoder_")


class ExportError(ValueError):
  """Parameters do not fit the requested official layout (lists the offending keys)."""


def _host_tree(params: Mapping) -> dict:
  return jax.tree.map(np.asarray, nn.unbox(dict(params)))


def layout_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
  """Official key -> shape of `model`'s params (no arrays are allocated)."""
  unrolled = jax.eval_shape(to_unrolled, param_shapes(model))
  out = {}
  for path, leaf in traverse_util.flatten_dict(unrolled).items():
    entry = param_mapping.entry_for_path(path)
    out[entry.key] = entry.torch_shape(leaf.shape, model.spec)
  return out


def target_model(spec: ModelSpec, target: str) -> nn.Module:
  """Our module with exactly the official layout of `target` ("pretrain" or "finetune")."""
  if target == "pretrain":
    return SpectralMAE(spec=dataclasses.replace(spec, kind="mae"))
  return SpectralViT(spec=dataclasses.replace(spec, kind="vit"), pos_embed="official_zeros")


def compare_layout(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]],
                   what: str, error: type[Exception] = ExportError) -> None:
  """Raises ExportError naming missing, unexpected and mis-shaped keys."""
  missing = sorted(set(expected) - set(state))
  unexpected = sorted(set(state) - set(expected))
  shapes = sorted(f"{k}: {tuple(state[k].shape)} != expected {expected[k]}"
                  for k in set(state) & set(expected) if tuple(state[k].shape) != expected[k])
  if missing or unexpected or shapes:
    raise error(f"{what}: parameters do not match the official layout. missing keys "
                      f"{missing}; unexpected keys {unexpected}; shape mismatches {shapes}")


def export_params(params: Mapping, spec: ModelSpec, *, target: str = "pretrain",
                  num_classes: int | None = None, dtype: str = "float32",
                  what: str = "params") -> tuple[dict[str, np.ndarray], ModelSpec, list[str]]:
  """Flax params (scanned or unrolled, any device) -> (official state_dict, its spec, notes).

  For target "finetune" the returned spec is the classifier's (kind "vit"; `num_classes`
  sets the head width when the params have no head).
  """
  if target not in manifest_lib.TARGETS:
    raise ValueError(f"target must be one of {manifest_lib.TARGETS}, got {target!r}")
  if dtype not in DTYPES:
    raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
  p = to_unrolled(_host_tree(params))
  notes: list[str] = []
  if target == "pretrain":
    out_spec = dataclasses.replace(spec, kind="mae")
    if spec.num_dates > 1:  # the official model takes the series as T*C frames
      p = param_mapping.fold_dates(p)
      out_spec = dataclasses.replace(out_spec, num_bands=spec.num_bands * spec.num_dates,
                                     num_dates=1)
      notes.append(f"{spec.num_dates} dates folded into num_frames = {out_spec.num_bands}: "
                   "(decoder_)pos_embed_temporal[t*G + g] = pos_embed_date[t] + "
                   "pos_embed_temporal[g]; import with the manifest's model record (num_dates) "
                   "unfolds them")
  else:
    p = {k: v for k, v in p.items() if not k.startswith(_DECODER)}
    if "pos_embed_spatial" in p and "pos_embed_temporal" in p:
      tables = [p.pop("pos_embed_spatial"), p.pop("pos_embed_temporal")]
      if "pos_embed_date" in p:
        tables.append(p.pop("pos_embed_date"))
      p["pos_embed"] = np.asarray(posembed.combine(*map(jnp.asarray, tables)))
      notes.append("pos_embed = pos_embed_spatial + pos_embed_temporal (posembed.combine)")
    if "head" in p:
      head_k = p["head"]["kernel"].shape[-1]
      if num_classes is not None and num_classes != head_k:
        raise ExportError(f"{what}: the head has {head_k} classes, {num_classes} were asked")
      num_classes = head_k
    else:
      num_classes = spec.num_classes if num_classes is None else num_classes
      d = spec.embed_dim
      p["head"] = {"kernel": np.zeros((d, num_classes), np.float32),
                   "bias": np.zeros((num_classes,), np.float32)}
      notes.append(f"head.weight/bias are zeros ({num_classes} classes): the source has no "
                   "classifier head; train it before use")
    out_spec = dataclasses.replace(spec, kind="vit", num_classes=num_classes)
  try:
    state = param_mapping.flax_to_torch(p, out_spec)
  except (KeyError, ValueError) as e:
    raise ExportError(f"{what}: cannot map parameters: {e}") from e
  compare_layout(state, layout_shapes(target_model(out_spec, target)),
                 f"{what} -> {target} ({manifest_lib.TORCH_MODULES[target]})")
  cast = DTYPES[dtype]
  state = {k: np.ascontiguousarray(v.astype(cast)) for k, v in state.items()}
  return state, out_spec, notes


@dataclasses.dataclass
class ExportResult:
  weights: pathlib.Path
  manifest: pathlib.Path
  data: dict[str, Any]


def _format_for(out: pathlib.Path, fmt: str | None) -> str:
  if fmt is None:
    fmt = "safetensors" if out.suffix.lower() in torch_io.SAFETENSORS_SUFFIXES else "pth"
  if fmt not in FORMATS:
    raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
  return fmt


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                      step: int | None = None, fmt: str | None = None,
                      target: str | None = None, dtype: str = "float32",
                      model: str | None = None, num_classes: int | None = None,
                      force: bool = False, classes: Any = None) -> ExportResult:
  """Reads an orbax checkpoint on the host and writes official weights + manifest.

  Args:
    checkpoint: workdir, its `checkpoints/` directory, or one step directory.
    out: weights file; the manifest is written to `<out>.json`.
    step: checkpoint step (default: latest).
    fmt: "pth" ({'model': state_dict}) or "safetensors" (flat); default from out's suffix.
    target: "pretrain" or "finetune" (see module docstring) for MAE and ViT checkpoints,
      "dense" for segmenters and change detectors (export.dense_export); None: "dense" for a
      dense model, else "pretrain".
    dtype: "float32" or "bfloat16" tensors.
    model: variant name overriding the checkpoint's meta (for checkpoints without one).
    num_classes: head width when exporting an MAE to the finetune layout.
    force: overwrite existing output files.
    classes: class names of a dense model, or a function of its data source name giving them
      (data_pipelines.dense.class_names, as the CLI passes); default class_<i>.
  """
  out = pathlib.Path(out).expanduser().resolve()
  fmt = _format_for(out, fmt)
  man_path = manifest_lib.manifest_path(out)
  for path in (out, man_path):
    if path.exists() and not force:
      raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
  ckpt = checkpoints.read_checkpoint(checkpoint, step)
  record = dict(ckpt.meta.get("model") or {})
  if model is not None:
    record = {"name": model, **{k: v for k, v in record.items() if k != "name"}}
  if "name" not in record:
    raise ExportError(f"{ckpt.path}: the checkpoint meta names no model; pass --model NAME")
  from spectralgpt_jax.export import dense_export  # pylint: disable=g-import-not-at-top
  dense = dense_export.is_dense_record(record)
  if target is None:
    target = "dense" if dense else "pretrain"
  if dense != (target == "dense"):
    raise ExportError(f"{ckpt.path}: target {target!r} does not fit a "
                      f"{models.get_spec(str(record['name'])).kind} model ({record['name']}); "
                      f"use --target {'dense' if dense else 'pretrain or finetune'}")
  if dense:
    return dense_export.export_dense(ckpt, record, out, man_path, fmt=fmt, dtype=dtype,
                                     force=force, classes=classes)
  src_model = models.build_model(record, runtime=False)
  state, out_spec, notes = export_params(ckpt.params, src_model.spec, target=target,
                                         num_classes=num_classes, dtype=dtype,
                                         what=f"{ckpt.path} ({record['name']})")
  if target == "finetune":
    pool = getattr(src_model, "pool", "mean")
    notes.append(f"pooling of the source model: {pool!r} (the official class always drops "
                 "token 0: exact only for 'official_skip_first'; otherwise pool all tokens)"
                 if src_model.spec.kind == "vit" else
                 "source is an MAE: encoder weights only, the classifier is not trained")
  bands = list(ckpt.meta.get("bands") or SPECTRALGPT_BANDS)
  weights = {"file": out.name, "format": fmt, "dtype": dtype, "num_tensors": len(state),
             "num_params": int(sum(v.size for v in state.values()))}
  src_record = manifest_lib.model_record(
      record["name"], src_model.spec,
      **{k: getattr(src_model, k) for k in models.ARCHITECTURE_KWARGS if hasattr(src_model, k)})
  if target == "pretrain":
    file_record = src_record
  else:  # the JAX model that reproduces this file: a ViT with the single pos_embed table
    is_vit = src_model.spec.kind == "vit"
    vit_name = record["name"] if is_vit else manifest_lib.variant_for(out_spec, "vit")
    file_record = manifest_lib.model_record(
        vit_name, out_spec, pos_embed="official_zeros",
        pool=src_model.pool if is_vit else "official_skip_first")
  data = manifest_lib.build_manifest(
      model=file_record, spec=out_spec, target=target, bands=bands,
      normalization=ckpt.meta.get("normalization"), step=ckpt.step,
      config=ckpt.meta.get("config"), weights=weights, notes=notes, source=str(ckpt.path))
  data["source_model"] = src_record
  return write_export(state, data, out, man_path, fmt=fmt, force=force)


def write_export(state: Mapping[str, np.ndarray], data: dict[str, Any], out: pathlib.Path,
                 man_path: pathlib.Path, *, fmt: str, force: bool) -> ExportResult:
  """Writes the weights file (`fmt` "pth" or "safetensors", the manifest embedded in the
  latter), then the manifest beside it with the file's sha256."""
  if fmt == "pth":
    torch_io.save_pth(state, out, force=force)
  else:
    torch_io.save_safetensors(state, out, manifest=data, force=force)
  data["weights"]["sha256"] = manifest_lib.sha256(out)
  manifest_lib.write_manifest(data, man_path)
  return ExportResult(weights=out, manifest=man_path, data=data)
