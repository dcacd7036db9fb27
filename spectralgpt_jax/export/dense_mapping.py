"""Flax params of a dense model (models.segmenter.SpectralSegmenter) <-> a PyTorch state_dict.

The encoder keeps the official layout (param_mapping: patch_embed, pos_embed_spatial/temporal,
blocks.<i>); a model with wavelength positions (spec.spectral_positions == "wavelength") adds
`pos_embed_spectral_residual.weight` [D, F] / `.bias` [D] (a Linear, named as the MAE's
residual). The heads use the official SpectralGPT segmentation / change-detection keys
(SegMunich `models_vit_tensor_CD_2`, OSCD `models_vit_tensor_CD`) where they exist:

  Flax path                                   state_dict key                      transform
  fc/kernel [T', 1], fc/bias                  fc.0.weight [1, T'], fc.0.bias      linear
  pyramid/conv<i>/proj/kernel [in, out]       conv<i>.0.weight [out, in, 1, 1]    conv1x1
  pyramid/conv<i>/norm/scale, bias            conv<i>.1.weight, bias (GroupNorm)  none
  pyramid/conv<i>/deconv/kernel [in,s,s,out]  conv<i>.3.weight [in, out, s, s]    deconv
  decoder/PPMHead/psp_modules_<i>/kernel      decoder.PPMHead.psp_modules.<i>.1.weight  conv1x1
  decoder/<block>/proj, decoder/<block>/norm  decoder.<block>.0, decoder.<block>.1
      (<block>: PPMHead/final -> PPMHead.final, Conv_fuse1..3, Conv_fuse1_..3_, fuse_all)
  decoder/conv_x1/kernel                      decoder.conv_x1.weight [out, in, 1, 1]  conv1x1
  cls_seg/conv/kernel [3, 3, in, K]           cls_seg.0.weight [K, in, 3, 3]      conv3x3
The PANGAEA head ("pangaea", no official counterpart) adds our own keys:
  neck/neck_0, neck/neck_1 (x4, x2 transposed convs)  neck.0.weight, neck.1.weight  deconv
  neck/neck_2, neck/neck_3 (1x1 convs)                neck.2.weight, neck.3.weight  conv1x1
(biases alike, `.bias`). The official modules also hold an unused final `norm` (LayerNorm of
the encoder width): an export writes it as ones / zeros so the file loads strictly into them;
an import drops it (`OFFICIAL_UNUSED`).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

import numpy as np
from flax import traverse_util

from spectralgpt_jax.export import param_mapping
from spectralgpt_jax.models.transformer import to_scanned, to_unrolled

ENCODER_TOP = ("patch_embed", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_date",
               "pos_embed_spectral_residual", "blocks")
OFFICIAL_UNUSED = ("norm.weight", "norm.bias")

# weight transforms: name -> (Flax -> torch, torch -> Flax); biases and norms stay as they are.
_WEIGHT: dict[str, tuple[Callable, Callable]] = {
    "none": (lambda x: x, lambda x: x),
    "linear": (lambda x: x.T, lambda x: x.T),
    "conv1x1": (lambda x: x.T[:, :, None, None], lambda x: x[:, :, 0, 0].T),
    "deconv": (lambda x: x.transpose(0, 3, 1, 2), lambda x: x.transpose(0, 2, 3, 1)),
    "conv3x3": (lambda x: x.transpose(3, 2, 0, 1), lambda x: x.transpose(2, 3, 1, 0)),
}

# (Flax module path, state_dict prefix, weight transform); {i} is a number, {b} a decoder block.
_RULES = (
    ("fc", "fc.0", "linear"),
    ("pyramid/conv{i}/proj", "conv{i}.0", "conv1x1"),
    ("pyramid/conv{i}/norm", "conv{i}.1", "none"),
    ("pyramid/conv{i}/deconv", "conv{i}.3", "deconv"),
    ("decoder/PPMHead/psp_modules_{i}", "decoder.PPMHead.psp_modules.{i}.1", "conv1x1"),
    ("decoder/PPMHead/final/proj", "decoder.PPMHead.final.0", "conv1x1"),
    ("decoder/PPMHead/final/norm", "decoder.PPMHead.final.1", "none"),
    ("decoder/{b}/proj", "decoder.{b}.0", "conv1x1"),
    ("decoder/{b}/norm", "decoder.{b}.1", "none"),
    ("decoder/conv_x1", "decoder.conv_x1", "conv1x1"),
    ("cls_seg/conv", "cls_seg.0", "conv3x3"),
    ("neck/neck_{j}", "neck.{j}", "deconv"),
    ("neck/neck_{k}", "neck.{k}", "conv1x1"),
)
_GROUPS = {"i": r"(?P<i>\d+)", "b": r"(?P<b>Conv_fuse\d_?|fuse_all)", "j": r"(?P<j>[01])",
           "k": r"(?P<k>[23])"}


def _pattern(template: str, sep: str) -> re.Pattern:
  body = re.escape(template).replace(re.escape("{"), "{").replace(re.escape("}"), "}")
  for name, group in _GROUPS.items():
    body = body.replace("{" + name + "}", group)
  return re.compile(f"^{body}{re.escape(sep)}(?P<leaf>[a-z]+)$")


_COMPILED = [(_pattern(f, "/"), _pattern(t, "."), f, t, w) for f, t, w in _RULES]


def _is_norm(template: str) -> bool:
  return template.endswith("/norm")


def head_key(path: tuple[str, ...]) -> tuple[str, Callable]:
  """A head param's Flax path -> (state_dict key, Flax -> torch value transform)."""
  joined = "/".join(path)
  for flax_re, _, _, torch_t, weight in _COMPILED:
    m = flax_re.match(joined)
    if m:
      fields = {k: v for k, v in m.groupdict().items() if k != "leaf" and v is not None}
      leaf = "bias" if m["leaf"] == "bias" else "weight"
      fn = _WEIGHT[weight][0] if m["leaf"] == "kernel" else _WEIGHT["none"][0]
      return f"{torch_t.format(**fields)}.{leaf}", fn
  raise KeyError(f"no state_dict name for the dense-head parameter {joined!r}")


def head_path(key: str) -> tuple[tuple[str, ...], Callable]:
  """A head state_dict key -> (Flax path, torch -> Flax value transform)."""
  for _, torch_re, flax_t, _, weight in _COMPILED:
    m = torch_re.match(key)
    if m:
      fields = {k: v for k, v in m.groupdict().items() if k != "leaf" and v is not None}
      if m["leaf"] == "bias":
        leaf, fn = "bias", _WEIGHT["none"][1]
      else:
        leaf = "scale" if _is_norm(flax_t) else "kernel"
        fn = _WEIGHT["none"][1] if _is_norm(flax_t) else _WEIGHT[weight][1]
      return tuple(flax_t.format(**fields).split("/")) + (leaf,), fn
  raise KeyError(f"unexpected key {key!r}: not an encoder or dense-head parameter")


def is_encoder_key(key: str) -> bool:
  return key.split(".")[0] in ENCODER_TOP


def flax_to_torch(params: Mapping, spec, *, official_norm: bool = True) -> dict[str, np.ndarray]:
  """Dense-model Flax params (scanned or unrolled, unboxed, on the host) -> state_dict: the
  encoder in the official order first, then the heads; `official_norm` adds the unused
  `norm.weight/bias` (ones / zeros) the official modules hold."""
  p = to_unrolled(dict(params))
  encoder = {k: v for k, v in p.items() if k in ENCODER_TOP}
  state = param_mapping.flax_to_torch(encoder, spec)
  if official_norm:
    state["norm.weight"] = np.ones((spec.embed_dim,), np.float32)
    state["norm.bias"] = np.zeros((spec.embed_dim,), np.float32)
  heads = traverse_util.flatten_dict({k: v for k, v in p.items() if k not in ENCODER_TOP})
  for path in sorted(heads):
    key, fn = head_key(path)
    state[key] = np.ascontiguousarray(fn(np.asarray(heads[path])))
  return state


def torch_to_flax(state: Mapping[str, np.ndarray], *, scan: bool = False) -> dict:
  """The inverse of `flax_to_torch` (the unused official `norm` is dropped)."""
  encoder = {k: v for k, v in state.items() if is_encoder_key(k)}
  params = param_mapping.torch_to_flax(encoder)
  flat = {}
  for key, value in state.items():
    if is_encoder_key(key) or key in OFFICIAL_UNUSED:
      continue
    path, fn = head_path(key)
    flat[path] = np.ascontiguousarray(fn(np.asarray(value)))
  params.update(traverse_util.unflatten_dict(flat))
  return to_scanned(params) if scan else params
