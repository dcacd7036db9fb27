"""`from_pretrained(path)`: our `.safetensors` / `.pth` exports (with their manifest) and the
official SpectralGPT `.pth` checkpoints, as ready PyTorch modules.

  model = from_pretrained("spectralgpt_base.safetensors")    # MaskedAutoencoderViT or ViT
  model.bands, model.normalization, model.manifest            # how to feed it

* `.pth` files are read with torch's weights-only unpickler (spectralgpt_jax.weights_format:
  only `argparse.Namespace`, which the official files store their `args` with, is allowed);
  the official files' `model` key (or a bare state_dict) holds the weights.
* The architecture comes from the manifest (`<file>.json` beside it, or inside a .safetensors
  file), which is checked against itself and the tensors: a wrong field raises ValueError naming
  the file and the field. Without a manifest it is inferred from the tensor shapes (heads from
  the variant table); official files are then given the official bands and min-max record,
  and an official classifier the official pooling (as `export.from_torch` imports one).
* Loading is strict: every key used, every shape right; the error lists missing, unexpected and
  mis-shaped keys. Tensors are cast to float32; the module is returned in eval mode.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any, Mapping

import torch
from torch import nn

from data_pipelines import normalization as norm_lib
from data_pipelines.schema import SPECTRALGPT_BANDS
from spectralgpt_jax import weights_format as wf
from spectralgpt_jax.torch.dense import DenseModel, dense_kwargs
from spectralgpt_jax.torch.factories import KINDS, variant_table
from spectralgpt_jax.torch.vit import POOLS

TARGET_KINDS = {"pretrain": "mae", "finetune": "vit"}
_CONSTRUCTOR_FIELDS = {"img_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
                       "mlp_ratio", "num_frames", "t_patch_size", "decoder_embed_dim",
                       "decoder_depth", "decoder_num_heads", "num_classes"}


class ManifestError(ValueError):
  """A manifest contradicts itself or its weights; the message names the file and field."""


def read_weights(path: str | os.PathLike
                 ) -> tuple[dict[str, torch.Tensor], dict | None, pathlib.Path | None]:
  """A weights file -> (state_dict of tensors, its checked manifest or None, the file the
  manifest came from: the weights file itself (embedded) or `<file>.json`). Raises
  CorruptWeightsError (unreadable file, non-finite tensor), UnsafeCheckpointError (.pth)."""
  path = pathlib.Path(path).expanduser()
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such weights file")
  manifest, where = None, None
  if path.suffix.lower() in wf.SAFETENSORS_SUFFIXES:
    from safetensors import safe_open  # pylint: disable=g-import-not-at-top
    try:
      with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
        manifest = wf.embedded_manifest(f.metadata(), path)
        where = path if manifest is not None else None
    except Exception as e:  # pylint: disable=broad-except  (SafetensorError, OSError, ...)
      raise wf.unreadable(path, e) from e
  else:
    state, _ = wf.unwrap_state_dict(wf.load_pth(path), path)
  bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
  if bad:
    raise ValueError(f"{path}: state_dict entries {bad[:5]} are not tensors")
  for key, value in state.items():
    if value.is_floating_point() and not torch.isfinite(value).all():
      raise wf.CorruptWeightsError(f"{path}: tensor {key!r} {list(value.shape)} holds "
                                   "non-finite values; refusing to use these weights")
  if manifest is None:
    manifest = wf.find_manifest(path)
    where = wf.manifest_path(path) if manifest is not None else None
  if manifest is not None:
    wf.check_manifest(manifest, where)
  return state, manifest, where


# ------------------------------------------------------------------ architecture

def _field_error(where: object, field: str, msg: str) -> ManifestError:
  return ManifestError(f"{where}: manifest field {field!r}: {msg}")


def from_manifest(man: Mapping[str, Any], where: object) -> tuple[str, dict[str, Any], dict]:
  """(kind, constructor kwargs, extras {"pool"}) of a checked manifest; ManifestError names the
  field that contradicts another (image_size, patch_size, tubelet_size, num_bands, bands,
  token_grid, variant, normalization)."""
  target = man.get("target")
  if target not in TARGET_KINDS:
    raise _field_error(where, "target", f"{target!r} is not one of {sorted(TARGET_KINDS)}")
  kind = TARGET_KINDS[target]
  ck = man.get("constructor_kwargs")
  if not isinstance(ck, Mapping):
    raise _field_error(where, "constructor_kwargs", "missing")
  kw = {k: v for k, v in ck.items() if k in _CONSTRUCTOR_FIELDS}
  frames = int(kw.get("num_frames", 0))
  checks = [("image_size", kw.get("img_size")), ("patch_size", kw.get("patch_size")),
            ("tubelet_size", kw.get("t_patch_size")), ("num_bands", frames)]
  for field, want in checks:
    if field in man and man[field] != want:
      raise _field_error(where, field, f"{man[field]!r} but constructor_kwargs say {want!r}")
  side = int(kw["img_size"]) // int(kw["patch_size"])
  grid = [frames // int(kw["t_patch_size"]), side, side]
  if "token_grid" in man and list(man["token_grid"]) != grid:
    raise _field_error(where, "token_grid", f"{man['token_grid']} but the sizes give {grid}")
  bands = man.get("bands")
  dates = int((man.get("model") or {}).get("num_dates", 1))
  if (not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands)
      or len(bands) * dates != frames):
    raise _field_error(where, "bands", f"{bands!r}: expected {frames // max(dates, 1)} band "
                       f"names ({frames} input planes over {dates} date(s))")
  variant = man.get("variant")
  table = variant_table()
  if variant not in table or table[variant].kind != kind:
    raise _field_error(where, "variant", f"{variant!r} is not a known {kind} variant "
                       f"(target {target!r})")
  norm = man.get("normalization")
  if norm is not None:
    mode = norm.get("mode") if isinstance(norm, Mapping) else None
    if norm_lib.MODE_ALIASES.get(mode, mode) not in norm_lib.NORMALIZATIONS:
      raise _field_error(where, "normalization", f"mode {mode!r} is not one of "
                         f"{norm_lib.NORMALIZATIONS}")
  extras = {}
  if kind == "vit":
    pool = (man.get("model") or {}).get("pool", "mean")
    if pool not in POOLS:
      raise _field_error(where, "model.pool", f"{pool!r} is not one of {POOLS}")
    extras["pool"] = pool
  return kind, kw, extras


def _count(state: Mapping[str, torch.Tensor], stack: str) -> int:
  return len({k.split(".")[1] for k in state if k.startswith(stack + ".")})


def _heads(width: int, where: object, decoder: bool = False) -> int:
  field = "decoder_embed_dim" if decoder else "embed_dim"
  heads = {getattr(s, "decoder_num_heads" if decoder else "num_heads")
           for s in variant_table().values() if getattr(s, field) == width}
  if len(heads) != 1:
    raise ValueError(f"{where}: no manifest, and the variant table gives no single head count "
                     f"for {field} {width} ({sorted(heads)}); pass model=NAME")
  return heads.pop()


def from_shapes(state: Mapping[str, torch.Tensor], where: object, spec: Any = None
                ) -> tuple[str, dict[str, Any]]:
  """(kind, constructor kwargs) of an official-layout state_dict, from its tensor shapes; the
  head counts (which shapes do not show) from `spec` (a variant) or the variant table."""
  w = state.get("patch_embed.proj.weight")
  if w is None or w.ndim != 5:
    raise ValueError(f"{where}: not a SpectralGPT state_dict (no 5-D patch_embed.proj.weight; "
                     f"first keys {sorted(state)[:6]})")
  d, t, p = int(w.shape[0]), int(w.shape[2]), int(w.shape[3])
  kw: dict[str, Any] = dict(patch_size=p, t_patch_size=t, embed_dim=d,
                            depth=_count(state, "blocks"),
                            num_heads=spec.num_heads if spec else _heads(d, where))
  kw["mlp_ratio"] = state["blocks.0.mlp.fc1.weight"].shape[0] / d if kw["depth"] else 4.0
  if "decoder_pred.weight" in state and "pos_embed_spatial" in state:
    side = math.isqrt(state["pos_embed_spatial"].shape[1])
    dd = int(state["decoder_embed.weight"].shape[0])
    kw.update(img_size=side * p, num_frames=int(state["pos_embed_temporal"].shape[1]) * t,
              decoder_embed_dim=dd, decoder_depth=_count(state, "decoder_blocks"),
              decoder_num_heads=(spec.decoder_num_heads if spec
                                 else _heads(dd, where, decoder=True)))
    return "mae", kw
  if "pos_embed" in state:
    length, groups = int(state["pos_embed"].shape[1]), 12 // t   # official: 12 bands
    side = math.isqrt(length // max(groups, 1))
    if groups * side * side != length:
      raise ValueError(f"{where}: cannot infer the token grid of pos_embed "
                       f"{tuple(state['pos_embed'].shape)}; pass model=NAME")
    kw.update(img_size=side * p, num_frames=groups * t,
              num_classes=int(state["head.weight"].shape[0]) if "head.weight" in state else 10)
    return "vit", kw
  raise ValueError(f"{where}: neither a pretraining (pos_embed_spatial + decoder_*) nor a "
                   "fine-tuning (pos_embed) state_dict")


# ------------------------------------------------------------------ loading

def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], where: object) -> None:
  """Loads `state` into `net` (cast to its dtype); ValueError lists every mismatch."""
  expected = net.state_dict()
  missing = sorted(set(expected) - set(state))
  unexpected = sorted(set(state) - set(expected))
  shapes = sorted(f"{k}: {tuple(state[k].shape)} != expected {tuple(expected[k].shape)}"
                  for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
  if missing or unexpected or shapes:
    raise ValueError(f"{where}: the weights do not fit {type(net).__name__}: missing keys "
                     f"{missing}; unexpected keys {unexpected}; shape mismatches {shapes}")
  net.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


def from_pretrained(path: str | os.PathLike, *, model: str | None = None) -> nn.Module:
  """Loads weights into a MaskedAutoencoderViT (pretraining files), VisionTransformer
  (fine-tuning files) or DenseModel (segmentation / change-detection exports, target "dense"),
  strictly, in eval mode.

  Args:
    path: our `.safetensors` / `.pth` export (manifest beside it or embedded) or an official
      SpectralGPT `.pth` (`model` key or a bare state_dict).
    model: for a file without a manifest, the variant whose head counts to use (the sizes
      still come from the tensor shapes); with a manifest it must be the manifest's variant.
  Returns:
    the module, with `.bands` (input band names, in order), `.normalization` (the record of
    data_pipelines.normalization), `.manifest` (None for official files) and `.source`.
  """
  path = pathlib.Path(path).expanduser()
  state, man, man_where = read_weights(path)
  extras: dict[str, Any] = {}
  if man is not None and man.get("target") == "dense":
    return _attach(_dense_net(state, man, man_where, model), man, path)
  if man is None and "cls_seg.0.weight" in state:
    raise ValueError(f"{path}: a segmentation / change-detection state_dict without a "
                     "manifest; export it with `python -m spectralgpt_jax export` (its task "
                     "and head cannot be read from the tensors)")
  if man is not None:
    if model is not None and model != man.get("variant"):
      raise _field_error(man_where, "variant", f"{man.get('variant')!r}, but model={model!r} "
                         "was asked for")
    kind, kwargs, extras = from_manifest(man, man_where)
  else:
    table = variant_table()
    if model is not None and model not in table:
      raise KeyError(f"unknown model {model!r}; known: {', '.join(sorted(table))}")
    kind, kwargs = from_shapes(state, path, table[model] if model else None)
    if kind == "vit":   # an official fine-tuned file was trained with the official pooling
      extras["pool"] = "official_skip_first"
  net = KINDS[kind](**kwargs, **extras)
  load_strict(net, state, path)
  return _attach(net, man, path)


def _dense_net(state: Mapping[str, torch.Tensor], man: Mapping[str, Any], where: object,
               model: str | None) -> nn.Module:
  """A DenseModel (spectralgpt_jax.torch.dense) loaded strictly from a dense export."""
  if model is not None and model != man.get("variant"):
    raise _field_error(where, "variant", f"{man.get('variant')!r}, but model={model!r} was "
                       "asked for")
  net = DenseModel(**dense_kwargs(man, where))
  load_strict(net, state, where)
  return net


def _attach(net: nn.Module, man: Mapping[str, Any] | None, path: pathlib.Path) -> nn.Module:
  """Sets .manifest, .bands, .normalization, .source; eval mode."""
  net.manifest = man
  net.bands = tuple(man["bands"]) if man else tuple(SPECTRALGPT_BANDS)
  net.normalization = (man.get("normalization") if man
                       else dict(wf.OFFICIAL_NORMALIZATION))
  net.source = str(path)
  return net.eval()
