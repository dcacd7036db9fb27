"""Import: official SpectralGPT / SpectralGPT+ `.pth` (or our own export) -> Flax params.

  load_weights(path, model=...)           file -> (params, model record, meta); nothing written
  import_file(path, out=..., model=...)   the same, written as an orbax checkpoint
  convert_state_dict(state, model, ...)   the pure part, on numpy state_dicts

Layouts recognised: "dense" (`cls_seg.0.weight`: a segmenter or change detector, see
export.dense_import), "pretrain" (MaskedAutoencoderViT: separable tables + decoder), "encoder"
(separable tables, no decoder) and "finetune" (VisionTransformer: one `pos_embed`). Into an
MAE only "pretrain" fits. Into a ViT the decoder and mask token are dropped; a "finetune" file
gives pos_embed="official_zeros" (its single table is kept as is) and official pooling. Position
tables are resized (bicubic spatial, linear spectral) when the target image size or band-group
count differs. A missing classifier head is initialised as the official fine-tuning does.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from data_pipelines import storage
from data_pipelines.schema import SPECTRALGPT_BANDS
from spectralgpt_jax import checkpoints
from spectralgpt_jax.export import (dense_export, dense_import, manifest as manifest_lib,
                                    param_mapping, torch_io)
from spectralgpt_jax.export.to_torch import ExportError, compare_layout, layout_shapes
from spectralgpt_jax import models
from spectralgpt_jax.models import VARIANTS, get_model, get_spec, posembed, wavelengths

_DECODER = ("mask_token", "decoder_")


class WeightsImportError(ExportError):
  """A state_dict does not fit the requested model."""


@dataclasses.dataclass
class Converted:
  """params: nested numpy Flax params; record: meta["model"]; notes: what was changed."""

  params: dict
  record: dict[str, Any]
  notes: list[str]


def detect_layout(state: Mapping[str, np.ndarray], what: str = "state_dict") -> str:
  if "pos_embed_spatial" in state and "pos_embed_temporal" in state:
    return "pretrain" if "decoder_pred.weight" in state else "encoder"
  if "pos_embed" in state:
    return "finetune"
  raise WeightsImportError(f"{what}: not a SpectralGPT state_dict (no pos_embed_spatial/"
                           f"pos_embed_temporal or pos_embed key; first keys {sorted(state)[:8]})")


def _depth(state: Mapping, stack: str) -> int:
  return len({k.split(".")[1] for k in state if k.startswith(stack + ".")})


def guess_model(state: Mapping[str, np.ndarray], what: str = "state_dict") -> tuple[str, dict]:
  """(variant name, get_model kwargs) matching an official state_dict's shapes."""
  layout = detect_layout(state, what)
  w = state.get("patch_embed.proj.weight")
  if w is None or w.ndim != 5:
    raise WeightsImportError(f"{what}: missing or malformed patch_embed.proj.weight")
  d, t, p = w.shape[0], w.shape[2], w.shape[3]
  depth = _depth(state, "blocks")
  kind = "mae" if layout == "pretrain" else "vit"
  cands = [n for n, s in VARIANTS.items() if s.kind == kind and
           (s.embed_dim, s.depth, s.patch) == (d, depth, p)]
  if not cands:
    raise WeightsImportError(f"{what}: no registered {kind} variant has width {d}, depth "
                             f"{depth} and patch {p}; pass the model name")
  if layout == "finetune":
    length, groups = state["pos_embed"].shape[1], 12 // t
    side = int(round((length // groups) ** 0.5))
    if groups * side * side != length:
      raise WeightsImportError(f"{what}: cannot infer the grid of pos_embed "
                               f"{state['pos_embed'].shape}; pass the model name")
  else:
    side = int(round(state["pos_embed_spatial"].shape[1] ** 0.5))
    groups = state["pos_embed_temporal"].shape[1]
  img, bands = side * p, groups * t
  name = min(cands, key=lambda n: (VARIANTS[n].img_size != img, VARIANTS[n].t_patch != t, n))
  s, kwargs = VARIANTS[name], {}
  if s.img_size != img:
    kwargs["img_size"] = img
  if s.t_patch != t:
    kwargs["t_patch"] = t
  if s.num_bands != bands:
    kwargs["num_bands"] = bands
  if "head.weight" in state:
    kwargs["num_classes"] = int(state["head.weight"].shape[0])
  return name, kwargs


def _resize_separable(state: dict, prefix: str, spec, notes: list[str]) -> None:
  sp, tp = f"{prefix}pos_embed_spatial", f"{prefix}pos_embed_temporal"
  _, h, w = spec.grid
  old = state[sp].shape[1]
  if old != h * w:
    state[sp] = np.asarray(posembed.resize_spatial(state[sp], (h, w)))
    notes.append(f"{sp}: {old} -> {h * w} positions (bicubic)")
  old_g = state[tp].shape[1]
  if old_g != spec.spectral_groups:
    state[tp] = np.asarray(posembed.resize_groups(state[tp], spec.spectral_groups))
    notes.append(f"{tp}: {old_g} -> {spec.spectral_groups} spectral groups (linear)")


def _resize_single(table: np.ndarray, spec, notes: list[str], what: str) -> np.ndarray:
  """[1, G*S, D] -> [1, G*h*w, D]: each spectral group's spatial table resized (bicubic)."""
  g_new, h, w = spec.grid
  length, d = table.shape[1], table.shape[2]
  if length == g_new * h * w:
    return table
  g = g_new if length % g_new == 0 else None
  side = int(round((length // g) ** 0.5)) if g else 0
  if not g or g * side * side != length:
    raise WeightsImportError(f"{what}: pos_embed has {length} tokens; cannot split it "
                             f"into {g_new} spectral groups of a square grid")
  out = jnp.stack([posembed.resize_spatial(table[:, i * side * side:(i + 1) * side * side],
                                           (h, w))[0] for i in range(g)])
  notes.append(f"pos_embed: {length} -> {g_new * h * w} tokens (bicubic per spectral group)")
  return np.asarray(out.reshape(1, -1, d))


def _init_head(d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """As main_finetune: weight trunc_normal(std 2e-5), bias uniform(+-1/sqrt(d)); torch layout."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  weight = jax.random.truncated_normal(k1, -2.0, 2.0, (k, d)) * 2e-5
  bias = jax.random.uniform(k2, (k,), minval=-d ** -0.5, maxval=d ** -0.5)
  return np.asarray(weight, np.float32), np.asarray(bias, np.float32)


def _spectral_residuals(state: dict, kwargs: dict, notes: list[str]) -> None:
  """Weights with `pos_embed_spectral_residual` are a wavelength-position model; table weights
  imported into one get zero residuals (its outputs on Sentinel-2 input are then exactly the
  table model's)."""
  if "pos_embed_spectral_residual.weight" in state:
    kwargs.setdefault("spectral_positions", "wavelength")
  if kwargs.get("spectral_positions") != "wavelength":
    return
  for prefix in ("", "decoder_"):
    key, table = f"{prefix}pos_embed_spectral_residual", f"{prefix}pos_embed_spatial"
    if f"{key}.weight" not in state and table in state:
      d = state[table].shape[-1]
      state[f"{key}.weight"] = np.zeros((d, wavelengths.NUM_FEATURES), np.float32)
      state[f"{key}.bias"] = np.zeros((d,), np.float32)
      notes.append(f"{key}: zeros (table weights: Sentinel-2 outputs unchanged)")


def convert_state_dict(state: Mapping[str, np.ndarray], model: str, *,
                       model_kwargs: Mapping[str, Any] | None = None,
                       image_size: int | None = None, num_classes: int | None = None,
                       scan: bool = False, seed: int = 0,
                       what: str = "state_dict") -> Converted:
  """Official-layout state_dict -> params of `get_model(model, **model_kwargs)`.

  Args:
    state: key -> numpy array (any float dtype; params come out float32).
    model: target variant name (MAE or ViT).
    model_kwargs: get_model kwargs (spec fields, pos_embed, pool).
    image_size, num_classes: overrides of the target; a head of another width is replaced.
    scan: return the blocks stacked (nn.scan layout).
  Raises:
    WeightsImportError (an ExportError) listing missing, unexpected and mis-shaped keys.
  """
  kwargs = dict(model_kwargs or {})
  if image_size is not None:
    kwargs["img_size"] = image_size
  if num_classes is not None:
    kwargs["num_classes"] = num_classes
  layout = detect_layout(state, what)
  state = {k: np.asarray(v, np.float32) for k, v in state.items()}
  notes: list[str] = []
  kind = get_spec(model).kind
  _spectral_residuals(state, kwargs, notes)
  if kind == "vit":
    dropped = sorted(k for k in state if k.startswith(_DECODER))
    state = {k: v for k, v in state.items() if k not in dropped}
    if dropped:
      notes.append(f"dropped {len(dropped)} decoder tensors (mask_token, decoder_*)")
    if layout == "finetune":
      if kwargs.get("pos_embed", "official_zeros") != "official_zeros":
        raise WeightsImportError(f"{what}: a fine-tuning state_dict has one pos_embed table; "
                                 "it loads only with pos_embed='official_zeros'")
      kwargs["pos_embed"] = "official_zeros"
      kwargs.setdefault("pool", "official_skip_first")
    if "head.weight" in state and "num_classes" not in kwargs:
      kwargs["num_classes"] = int(state["head.weight"].shape[0])
  target = get_model(model, **kwargs)
  spec = target.spec
  if spec.num_dates > 1 and layout != "finetune" and "pos_embed_date" not in state:
    unfolded = param_mapping.unfold_dates(state, spec.num_dates)
    if unfolded is not None:
      state = unfolded
      notes.append(f"pos_embed_date: {spec.num_dates} dates unfolded from pos_embed_temporal")
    else:
      kwargs.update(num_bands=spec.num_bands * spec.num_dates, num_dates=1)
      target = get_model(model, **kwargs)
      spec = target.spec
      notes.append(f"pos_embed_temporal is not date + spectral group: imported with the dates "
                   f"folded into the bands (num_bands={spec.num_bands}, num_dates=1)")
  if kind == "vit" and layout != "finetune":
    _resize_separable(state, "", spec, notes)
    if target.pos_embed == "official_zeros":
      dates = [state.pop("pos_embed_date")] if "pos_embed_date" in state else []
      state["pos_embed"] = np.asarray(posembed.combine(state.pop("pos_embed_spatial"),
                                                       state.pop("pos_embed_temporal"), *dates))
      notes.append("pos_embed = pos_embed_spatial + pos_embed_temporal")
  elif kind == "vit":
    state["pos_embed"] = _resize_single(state["pos_embed"], spec, notes, what)
  elif layout == "pretrain":
    _resize_separable(state, "", spec, notes)
    _resize_separable(state, "decoder_", spec, notes)
  if kind == "vit":
    head = state.get("head.weight")
    if head is None or head.shape[0] != spec.num_classes:
      state["head.weight"], state["head.bias"] = _init_head(spec.embed_dim, spec.num_classes, seed)
      notes.append(f"head initialised ({spec.num_classes} classes): "
                   + ("none in the source" if head is None else f"source head has {head.shape[0]}"))
  compare_layout(state, layout_shapes(target), f"{what} -> {model}", WeightsImportError)
  params = param_mapping.torch_to_flax(state, scan=scan)
  record = manifest_lib.model_record(
      model, spec, **{k: getattr(target, k) for k in models.ARCHITECTURE_KWARGS
                      if hasattr(target, k)})
  return Converted(params=params, record=record, notes=notes)


# What the weights were trained on, carried into another variant named on the command line.
_INPUT_FIELDS = ("img_size", "num_bands", "t_patch", "num_dates")


def input_fields_from_manifest(man: Mapping[str, Any], model: str,
                               explicit: Mapping[str, Any]) -> dict[str, Any]:
  """The manifest's input geometry (image size, bands, tubelet depth, dates) where it differs
  from variant `model`'s defaults and was not given in `explicit`: importing into a named
  variant keeps the size the weights were trained at instead of resizing to the default."""
  if model not in VARIANTS:
    raise WeightsImportError(f"unknown model {model!r}; known: {', '.join(sorted(VARIANTS))}")
  source = get_spec(str(man["model"]["name"]),
                    **{k: v for k, v in man["model"].items() if k in _INPUT_FIELDS})
  target = VARIANTS[model]
  return {k: getattr(source, k) for k in _INPUT_FIELDS
          if k not in explicit and getattr(source, k) != getattr(target, k)}


def load_weights(path: str | os.PathLike, *, model: str | None = None,
                 model_kwargs: Mapping[str, Any] | None = None, image_size: int | None = None,
                 num_classes: int | None = None, scan: bool = False
                 ) -> tuple[Converted, dict[str, Any]]:
  """A .pth/.safetensors file -> (Converted, meta {"config", "model", "bands", "normalization"}).

  The model comes from `model`, else the file's manifest, else the state_dict's shapes. With
  both `model` and a manifest, the manifest's image size, bands, tubelet depth and dates win
  over the variant's defaults (a note says so); `image_size` or `model_kwargs` override them.
  `path` may be a URL (gs://, s3://, ...): the file and its manifest are read through
  data_pipelines.storage into a temporary folder.
  """
  if storage.is_url(path):
    url = os.fspath(path)
    with storage.local_copy(url, beside=(".json",)) as local:
      conv, meta = load_weights(local, model=model, model_kwargs=model_kwargs,
                                image_size=image_size, num_classes=num_classes, scan=scan)
    meta["config"]["imported_from"] = url
    return conv, meta
  path = pathlib.Path(path).expanduser().resolve()
  state, extras = torch_io.load_state_dict(path)
  man = extras.get("manifest") or manifest_lib.find_manifest(path)
  if _is_dense(state, man, model):
    if image_size is not None or num_classes is not None:
      raise WeightsImportError(f"{path}: image_size / num_classes cannot change a dense "
                               "(segmentation / change) model on import")
    return _load_dense(path, state, extras, man, model=model, model_kwargs=model_kwargs,
                       scan=scan)
  kwargs = dict(model_kwargs or {})
  inherited: dict[str, Any] = {}
  if model is None and man is not None:
    model = str(man["model"]["name"])
    rec_kwargs = models.record_kwargs(man["model"], runtime=False)
    kwargs = {**rec_kwargs, **kwargs}
  elif model is None:
    model, guessed = guess_model(state, str(path))
    kwargs = {**guessed, **kwargs}
  elif man is not None:
    inherited = input_fields_from_manifest(man, model, explicit={**kwargs, **(
        {"img_size": image_size} if image_size is not None else {})})
    kwargs = {**inherited, **kwargs}
  conv = convert_state_dict(state, model, model_kwargs=kwargs, image_size=image_size,
                            num_classes=num_classes, scan=scan, what=str(path))
  for key, value in inherited.items():
    conv.notes.insert(0, f"{key} {value} from the manifest ({model}'s default is "
                      f"{getattr(VARIANTS[model], key)}; pass it explicitly to change it)")
  meta = {"config": _source_config(path, extras, man), "model": conv.record,
          "bands": list(man["bands"]) if man else list(SPECTRALGPT_BANDS),
          "normalization": (man.get("normalization") if man
                            else dict(manifest_lib.OFFICIAL_NORMALIZATION)),
          "import_notes": conv.notes}
  return conv, meta


def _is_dense(state: Mapping, man: Mapping | None, model: str | None) -> bool:
  named = model if model is not None else (man["model"]["name"] if man else None)
  named_dense = named in VARIANTS and VARIANTS[named].kind in dense_export.DENSE_KINDS
  return dense_import.is_dense_state(state) or named_dense


def _source_config(path: pathlib.Path, extras: Mapping, man: Mapping | None) -> dict[str, Any]:
  config = {"imported_from": str(path)}
  if "args" in extras:
    config["source_args"] = extras["args"]
  if "epoch" in extras:
    config["source_epoch"] = extras["epoch"]
  if man is not None:
    config["source_manifest"] = {k: man.get(k) for k in ("variant", "target", "training_step",
                                                          "package", "config")}
  return config


def _load_dense(path: pathlib.Path, state: Mapping, extras: Mapping, man: Mapping | None, *,
                model: str | None, model_kwargs: Mapping[str, Any] | None, scan: bool
                ) -> tuple[Converted, dict[str, Any]]:
  """load_weights of a segmenter / change detector (export.dense_import)."""
  name, kwargs = dense_import.dense_target(state, man, model, str(path))
  conv = dense_import.convert_dense(state, name, model_kwargs={**kwargs, **(model_kwargs or {})},
                                    scan=scan, what=str(path))
  meta = {"config": _source_config(path, extras, man), "model": conv.record,
          "bands": list(man["bands"]) if man else list(SPECTRALGPT_BANDS),
          "normalization": (man.get("normalization") if man
                            else dict(manifest_lib.OFFICIAL_NORMALIZATION)),
          "import_notes": conv.notes, **dense_import.protocol_meta(man)}
  return conv, meta


def import_file(path: str | os.PathLike, out: str | os.PathLike, *, model: str | None = None,
                image_size: int | None = None, num_classes: int | None = None,
                scan: bool = False, step: int = 0, force: bool = False
                ) -> tuple[pathlib.Path, Converted, dict[str, Any]]:
  """Imports a weights file as the run directory `out`: writes `<out>/checkpoints/<step>/{state,
  meta}` (state = params + step, no optimizer state), which training reads through
  `config.init_from.workdir=<out>`. `path` and `out` may be URLs (orbax writes gs:// and
  local paths). Returns the step directory."""
  checkpoints.check_location(out)      # before any reading: s3:// and the like fail here
  conv, meta = load_weights(path, model=model, image_size=image_size, num_classes=num_classes,
                            scan=scan)
  if storage.is_url(out):
    root = storage.join(out, checkpoints.CHECKPOINTS_SUBDIR)
    storage.filesystem(root)  # the client this process's settings call for, for orbax too
  else:
    root = pathlib.Path(out).expanduser().resolve() / checkpoints.CHECKPOINTS_SUBDIR
  step_dir = checkpoints.write_checkpoint(root, conv.params, meta, step=step, force=force)
  return step_dir, conv, meta
