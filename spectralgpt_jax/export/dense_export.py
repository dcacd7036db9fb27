"""Export of dense models (segmenters, change detectors): target "dense".

  export_dense(ckpt, record, out, ...)   a checkpoint of a seg / change run -> weights + manifest
  dense_params(params, model, ...)       the pure part: Flax params -> state_dict (checked)
  dense_protocol(meta, spec, ...)        task, classes, output and tile protocol of a dense run

State_dict layout: `dense_mapping` (encoder in the official keys, heads under the official
SegMunich / OSCD names, PANGAEA neck under `neck.<i>`). The manifest carries, on top of the
common fields (export.manifest.build_manifest): task, classes, output ("logits" or
"log_probabilities"), head (the head's architecture fields) and tile (size, stride, num_dates,
minmax_scope): what `predict` needs to apply the model to a whole scene. A model with
wavelength positions also carries band_set {"bands", "wavelengths", "fwhm"} (nm per input
plane, group order; the model record holds the same wavelengths / fwhm, which an import reads).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Callable, Mapping, Sequence, Union

import flax.linen as nn
import jax
import numpy as np
from flax import traverse_util

from data_pipelines.schema import SPECTRALGPT_BANDS
from spectralgpt_jax import models
from spectralgpt_jax.export import dense_mapping, manifest as manifest_lib, param_mapping
from spectralgpt_jax.export.to_torch import (DTYPES, ExportError, ExportResult, compare_layout,
                                             write_export)
from spectralgpt_jax.models.shapes import param_shapes
from spectralgpt_jax.models.transformer import to_unrolled
from spectralgpt_jax.models.wavelengths import S2_CENTRES, S2_FWHM

DENSE_KINDS = ("seg", "change")
TASKS = {"seg": "segmentation", "change": "change_detection"}
OUTPUTS = {"seg": "logits", "change": "log_probabilities"}
TORCH_MODULE = "spectralgpt_jax.torch.dense.DenseModel"
HEAD_FIELDS = ("head", "fusion", "feature_layers", "pyramid_channels", "head_channels",
               "pyramid_groups", "head_groups")


def head_fields(model: nn.Module) -> dict[str, Any]:
  """The dense module's head architecture (JSON-able)."""
  out = {}
  for k in HEAD_FIELDS:
    v = getattr(model, k)
    out[k] = list(v) if isinstance(v, (tuple, list)) else v
  return out


def dense_layout(model: nn.Module) -> dict[str, tuple[int, ...]]:
  """State_dict key -> shape of `model`'s params in the dense layout (nothing allocated)."""
  shapes = traverse_util.flatten_dict(jax.eval_shape(to_unrolled, param_shapes(model)))
  out = {k: (model.spec.embed_dim,) for k in dense_mapping.OFFICIAL_UNUSED}
  for path, leaf in shapes.items():
    if path[0] in dense_mapping.ENCODER_TOP:
      entry = param_mapping.entry_for_path(path)
      out[entry.key] = entry.torch_shape(leaf.shape, model.spec)
    else:  # the head transforms are views: a zero-strided array costs no memory
      key, fn = dense_mapping.head_key(path)
      out[key] = tuple(fn(np.broadcast_to(np.float32(0), leaf.shape)).shape)
  return out


def dense_params(params: Mapping, model: nn.Module, *, dtype: str = "float32",
                 what: str = "params") -> dict[str, np.ndarray]:
  """Flax params of dense `model` -> state_dict in `dtype`; ExportError names bad keys."""
  host = jax.tree.map(np.asarray, nn.unbox(dict(params)))
  try:
    state = dense_mapping.flax_to_torch(host, model.spec)
  except (KeyError, ValueError) as e:
    raise ExportError(f"{what}: cannot map parameters: {e}") from e
  compare_layout(state, dense_layout(model), f"{what} -> dense ({TORCH_MODULE})")
  cast = DTYPES[dtype]
  return {k: np.ascontiguousarray(np.asarray(v).astype(cast)) for k, v in state.items()}


def _eval_tiles(run_dir: pathlib.Path | None) -> dict[str, int]:
  """tile_size / tile_stride the dense evaluation of this run used (its metrics.json beside the
  run directory), or {}."""
  if run_dir is None:
    return {}
  for folder in (run_dir, run_dir.parent):
    path = folder / "metrics.json"
    if path.is_file():
      try:
        info = json.loads(path.read_text()).get("info") or {}
      except ValueError:
        return {}
      if "tile_size" in info:
        return {"size": int(info["tile_size"]), "stride": int(info["tile_stride"])}
  return {}


ClassNames = Union[Sequence[str], Callable[[str], Sequence[str]], None]


def dense_protocol(meta: Mapping[str, Any], spec, *, run_dir: pathlib.Path | None = None,
                   classes: ClassNames = None) -> dict[str, Any]:
  """{"task", "classes", "num_classes", "output", "tile": {size, stride, num_dates,
  minmax_scope}} of a dense model: tile size and stride from the run's evaluation when
  found, else the training input size and half of it (dense_eval's defaults).

  `classes`: names, or a function of the run's data source name giving them
  (data_pipelines.dense.class_names); default class_<i>."""
  data = ((meta.get("config") or {}).get("data") or {})
  if callable(classes):
    classes = classes(str(data["source"])) if data.get("source") else None
  size = int(data.get("image_size") or spec.img_size)
  tile = {"size": size, "stride": max(size // 2, 1)}
  tile.update(_eval_tiles(run_dir))
  tile["num_dates"] = 2 if spec.kind == "change" else 1
  tile["minmax_scope"] = data.get("minmax_scope", "image")
  names = list(classes) if classes else [f"class_{i}" for i in range(spec.num_classes)]
  if len(names) != spec.num_classes:
    raise ValueError(f"{len(names)} class names for a model of {spec.num_classes} classes")
  return {"task": TASKS[spec.kind], "classes": names, "num_classes": spec.num_classes,
          "output": OUTPUTS[spec.kind], "tile": tile}


def band_wavelengths(model: nn.Module) -> dict[str, list[float]]:
  """{"wavelengths", "fwhm"} (nm per input plane) of a wavelength-position model (None at
  build: the 12 Sentinel-2 bands); {} for table positions."""
  if model.spec.spectral_positions != "wavelength":
    return {}
  if model.wavelengths is None:
    return {"wavelengths": list(S2_CENTRES), "fwhm": list(S2_FWHM)}
  fwhm = model.fwhm if model.fwhm is not None else [0.0] * len(model.wavelengths)
  return {"wavelengths": [float(c) for c in model.wavelengths],
          "fwhm": [float(f) for f in fwhm]}


def torch_kwargs(model: nn.Module) -> dict[str, Any]:
  """Constructor kwargs of spectralgpt_jax.torch.dense.DenseModel for `model`."""
  s = model.spec
  kw = dict(img_size=s.img_size, patch_size=s.patch, num_frames=s.num_bands,
            t_patch_size=s.t_patch, embed_dim=s.embed_dim, depth=s.depth,
            num_heads=s.num_heads, mlp_ratio=s.mlp_ratio, num_classes=s.num_classes,
            task=s.kind, **head_fields(model))
  if s.spectral_positions == "wavelength":
    kw.update(spectral_positions=s.spectral_positions, **band_wavelengths(model))
  return kw


def dense_manifest(model: nn.Module, record: Mapping[str, Any], protocol: Mapping[str, Any], *,
                   bands: list[str], normalization, step, config, weights, notes,
                   source: str) -> dict[str, Any]:
  """The manifest of a dense export (common fields + task, classes, output, head, tile)."""
  s = model.spec
  official = s.official_name if (model.head == "official" and model.fusion == "difference"
                                 and s.embed_dim == 768
                                 and s.spectral_positions == "table") else ""
  # The common fields; the official-class ones (for "pretrain") are replaced below.
  data = manifest_lib.build_manifest(
      model=record, spec=s, target="pretrain", bands=bands, normalization=normalization,
      step=step, config=config, weights=weights, notes=notes, source=source)
  data.update(target="dense", torch_module=TORCH_MODULE, official_factory="",
              official_factory_kwargs={}, official_module=official,
              constructor_kwargs=torch_kwargs(model), head=head_fields(model), **protocol)
  band_set = band_wavelengths(model)
  if band_set:
    if len(bands) != len(band_set["wavelengths"]):
      raise ExportError(f"bands {bands}: {len(bands)} names for the "
                        f"{len(band_set['wavelengths'])} wavelengths the model was built with")
    data["band_set"] = {"bands": list(bands), **band_set}
  return data


def export_dense(ckpt, record: Mapping[str, Any], out: pathlib.Path, man_path: pathlib.Path, *,
                 fmt: str, dtype: str, force: bool, classes: ClassNames = None):
  """Writes a dense checkpoint `ckpt` (checkpoints.CheckpointContents) as `out` + manifest."""
  model = models.build_model(record, runtime=False)
  what = f"{ckpt.path} ({record['name']})"
  state = dense_params(ckpt.params, model, dtype=dtype, what=what)
  run_dir = pathlib.Path(str(ckpt.path)).parents[1] if ckpt.path else None
  protocol = dense_protocol(ckpt.meta, model.spec, run_dir=run_dir, classes=classes)
  notes = ["norm.weight/bias: ones / zeros, unused (the official modules hold this final "
           "norm; our model has none)"]
  weights = {"file": out.name, "format": fmt, "dtype": dtype, "num_tensors": len(state),
             "num_params": int(sum(v.size for v in state.values()))}
  file_record = manifest_lib.model_record(
      record["name"], model.spec,
      **{k: getattr(model, k) for k in models.ARCHITECTURE_KWARGS if hasattr(model, k)})
  data = dense_manifest(model, file_record, protocol,
                        bands=list(ckpt.meta.get("bands") or SPECTRALGPT_BANDS),
                        normalization=ckpt.meta.get("normalization"), step=ckpt.step,
                        config=ckpt.meta.get("config"), weights=weights, notes=notes,
                        source=str(ckpt.path))
  return write_export(state, data, out, man_path, fmt=fmt, force=force)


def is_dense_record(record: Mapping[str, Any]) -> bool:
  return models.get_spec(str(record["name"])).kind in DENSE_KINDS


__all__ = ["DENSE_KINDS", "band_wavelengths", "dense_layout", "dense_manifest", "dense_params",
           "dense_protocol", "export_dense", "head_fields", "is_dense_record", "torch_kwargs"]
