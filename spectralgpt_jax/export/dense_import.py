"""Import of dense state_dicts (our "dense" exports, and the official SegMunich / OSCD layout)
into a segmenter or change detector (models.segmenter.SpectralSegmenter).

A dense state_dict has `cls_seg.0.weight`; its task (segmentation or change detection) and head
fields are not all readable from the shapes, so they come from the manifest's model record, or
from the variant named (`model=`, e.g. cd_vit_base_patch8_128 for the official OSCD file; head
widths are then read from the tensors).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from spectralgpt_jax import models
from spectralgpt_jax.export import dense_export, dense_mapping, manifest as manifest_lib
from spectralgpt_jax.export.to_torch import ExportError, compare_layout

DENSE_KEY = "cls_seg.0.weight"
# Manifest fields of a dense export that travel into the loaded model's meta.
PROTOCOL_FIELDS = ("task", "classes", "num_classes", "output", "tile", "head")


def is_dense_state(state: Mapping[str, Any]) -> bool:
  return DENSE_KEY in state


def head_kwargs_from_shapes(state: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """Head widths and class count readable from a dense state_dict's shapes."""
  kw: dict[str, Any] = {"num_classes": int(state[DENSE_KEY].shape[0]),
                        "head_channels": int(state[DENSE_KEY].shape[1])}
  if "conv0.0.weight" in state:
    kw["head"] = "official"
    kw["pyramid_channels"] = tuple(int(state[f"conv{i}.3.bias"].shape[0]) if i < 3 else
                                   int(state["conv3.0.weight"].shape[0]) for i in range(4))
  elif "neck.0.weight" in state:
    kw["head"] = "pangaea"
  return kw


def convert_dense(state: Mapping[str, np.ndarray], model: str, *,
                  model_kwargs: Mapping[str, Any] | None = None, scan: bool = False,
                  what: str = "state_dict"):
  """Dense state_dict -> from_torch.Converted for dense variant `model` (record from
  `model_kwargs`, e.g. a manifest's). WeightsImportError (an ExportError) names a wrong kind
  and every missing, unexpected or mis-shaped key."""
  from spectralgpt_jax.export.from_torch import (  # pylint: disable=g-import-not-at-top
      Converted, WeightsImportError)
  kind = models.get_spec(model).kind
  if kind not in dense_export.DENSE_KINDS:
    raise WeightsImportError(f"{what}: a dense (segmentation / change) state_dict does not fit "
                             f"the {kind} model {model}; name a seg_* or cd_* variant")
  kwargs = dict(model_kwargs or {})
  target = models.get_model(model, **kwargs)
  state = {k: np.asarray(v, np.float32) for k, v in state.items()}
  notes = []
  if any(k in state for k in dense_mapping.OFFICIAL_UNUSED):
    notes.append("norm.weight/bias dropped (the official final norm is unused)")
    state = {k: v for k, v in state.items() if k not in dense_mapping.OFFICIAL_UNUSED}
  expected = {k: v for k, v in dense_export.dense_layout(target).items()
              if k not in dense_mapping.OFFICIAL_UNUSED}
  compare_layout(state, expected, f"{what} -> {model}", WeightsImportError)
  params = dense_mapping.torch_to_flax(state, scan=scan)
  record = manifest_lib.model_record(
      model, target.spec,
      **{k: getattr(target, k) for k in models.ARCHITECTURE_KWARGS if hasattr(target, k)})
  return Converted(params=params, record=record, notes=notes)


def dense_target(state: Mapping[str, np.ndarray], man: Mapping[str, Any] | None,
                 model: str | None, what: str) -> tuple[str, dict[str, Any]]:
  """(variant, get_model kwargs) for a dense state_dict: the manifest's record, else `model`
  with the head widths read from the tensors."""
  from spectralgpt_jax.export.from_torch import (  # pylint: disable=g-import-not-at-top
      WeightsImportError)
  if man is not None and (model is None or model == man["model"]["name"]):
    return str(man["model"]["name"]), models.record_kwargs(man["model"], runtime=False)
  if model is None:
    raise WeightsImportError(f"{what}: a dense state_dict without a manifest: segmentation or "
                             "change detection cannot be told from its tensors; pass the "
                             "model (e.g. seg_vit_base_patch8_128 or cd_vit_base_patch8_128)")
  if model not in models.VARIANTS:
    raise WeightsImportError(f"{what}: unknown model {model!r}")
  return model, head_kwargs_from_shapes(state)


def protocol_meta(man: Mapping[str, Any] | None) -> dict[str, Any]:
  """The dense manifest fields (task, classes, output, tile, head) for the loaded meta."""
  if not man:
    return {}
  return {k: man[k] for k in PROTOCOL_FIELDS if k in man}


__all__ = ["DENSE_KEY", "PROTOCOL_FIELDS", "convert_dense", "dense_target",
           "head_kwargs_from_shapes", "is_dense_state", "protocol_meta"]
