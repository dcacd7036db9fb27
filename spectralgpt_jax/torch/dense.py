"""SpectralGPT segmentation and Siamese change detection in plain PyTorch (clean room, from the
published description of the official SegMunich / OSCD models, spec section 5), in the state_dict
layout `spectralgpt_jax.export.dense_mapping` documents (official keys where they exist).

  model = from_pretrained("oscd_tiny.safetensors")     # a DenseModel (target "dense")
  logits = model(x)               # segmentation: [B, K, H, W] logits
  logp = model(x1, x2)            # change detection: [B, K, H, W] log-probabilities

Encoder: tubelets + separable positions + blocks, the last block's tokens (no final norm; the
official unused `norm` is kept so official files load strictly). Heads:
  "official"  `fc` (Linear(T', 1)) fuses the spectral groups; dates combined (x1 - x2, or
              concatenated: fusion="concat"); conv0..3 pyramid (x8, x4, x2, x1), FPN decoder
              with max pyramid pooling, 3x3 `cls_seg`.
  "pangaea"   blocks `feature_layers`, spectral groups concatenated on channels; neck (x4, x2
              transposed convs, 1x1, 2x2 max pool + 1x1), FPN decoder with average pooling.
The logits are resized (bilinear, align_corners=True) to the input size; a change model ends in
LogSoftmax over classes. Inputs are [B, C, H, W] at the model's size, normalized, bands in order.

Any band set (spectral_positions="wavelength"): as the JAX model, the bands are fixed at build
(`wavelengths=`, `fwhm=`: nm per input plane, group order; None = the 12 Sentinel-2 bands); the
spectral table keeps its num_frames / t_patch_size reference rows, interpolated at the groups'
wavelengths plus `pos_embed_spectral_residual` (torch/spectral.py), and `fc` fuses the band
set's groups.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spectralgpt_jax.torch import spectral
from spectralgpt_jax.torch.layers import (Block, PatchEmbed, as_volume, full_pos_embed,
                                          layer_norm, run_blocks)

GN_EPS = 1e-5
TASKS = ("seg", "change")
HEADS = ("official", "pangaea")
FUSIONS = ("difference", "concat")


def conv_norm_act(c_in: int, width: int, groups: int, dropout: float, scale: int = 1,
                  c_out: int = 0) -> nn.Sequential:
  """1x1 conv (.0), GroupNorm (.1), GELU (.2) [, x`scale` ConvTranspose (.3)], Dropout."""
  layers = [nn.Conv2d(c_in, width, 1), nn.GroupNorm(groups, width, eps=GN_EPS), nn.GELU()]
  if scale > 1:
    layers.append(nn.ConvTranspose2d(width, c_out or width, scale, stride=scale))
  layers.append(nn.Dropout(dropout))
  return nn.Sequential(*layers)


def resize(x: torch.Tensor, size) -> torch.Tensor:
  """Bilinear, align_corners=True; identity at equal size."""
  if tuple(x.shape[-2:]) == tuple(size):
    return x
  return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class PyramidPooling(nn.Module):
  """PPM: adaptive pooling to 1, 2, 3, 6 bins, 1x1 conv each (`psp_modules.i.1`), upsampled,
  concatenated with the input, then `final`. [B, C, h, w] -> [B, channels, h, w]."""

  def __init__(self, c_in: int, channels: int, groups: int, dropout: float, pool: str,
               bins: Sequence[int] = (1, 2, 3, 6)):
    super().__init__()
    pooling = nn.AdaptiveMaxPool2d if pool == "max" else nn.AdaptiveAvgPool2d
    self.psp_modules = nn.ModuleList(
        [nn.Sequential(pooling(b), nn.Conv2d(c_in, channels, 1)) for b in bins])
    self.final = conv_norm_act(c_in + len(bins) * channels, channels, groups, dropout)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    outs = [x] + [resize(m(x), x.shape[-2:]) for m in self.psp_modules]
    return self.final(torch.cat(outs, dim=1))


class FPNHead(nn.Module):
  """UPerNet-like decoder over 4 levels (fine to coarse) -> [B, channels, S, S]."""

  def __init__(self, level_channels: Sequence[int], channels: int, groups: int, dropout: float,
               pool: str):
    super().__init__()
    c0, c1, c2, c3 = level_channels
    block = lambda c: conv_norm_act(c, channels, groups, dropout)
    self.PPMHead = PyramidPooling(c3, channels, groups, dropout, pool)
    self.Conv_fuse1, self.Conv_fuse1_ = block(c2), block(channels)
    self.Conv_fuse2, self.Conv_fuse2_ = block(c1), block(channels)
    self.Conv_fuse3, self.Conv_fuse3_ = block(c0), block(channels)
    self.fuse_all = block(4 * channels)
    self.conv_x1 = nn.Conv2d(channels, channels, 1)

  def forward(self, levels: Sequence[torch.Tensor]) -> torch.Tensor:
    x = self.PPMHead(levels[3])
    outs = [x]
    fuse = ((self.Conv_fuse1, self.Conv_fuse1_, levels[2]),
            (self.Conv_fuse2, self.Conv_fuse2_, levels[1]),
            (self.Conv_fuse3, self.Conv_fuse3_, levels[0]))
    for lateral_conv, smooth, lateral in fuse:
      x = self.conv_x1(resize(x, lateral.shape[-2:])) + lateral_conv(lateral)
      x = smooth(x)
      outs.append(x)
    size = levels[0].shape[-2:]
    return self.fuse_all(torch.cat([resize(o, size) for o in outs], dim=1))


class DenseModel(nn.Module):
  """SpectralGPT encoder + dense head; see the module docstring.

  task: "seg" (one image) or "change" (two dates, shared encoder). The other arguments mirror
  the JAX `SpectralSegmenter` fields (pyramid_channels, head_channels, GroupNorm groups...).
  """

  def __init__(self, img_size: int = 128, patch_size: int = 8, num_frames: int = 12,
               t_patch_size: int = 3, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
               mlp_ratio: float = 4.0, num_classes: int = 13, task: str = "seg",
               head: str = "official", fusion: str = "difference",
               feature_layers: Sequence[int] = (3, 5, 7, 11),
               pyramid_channels: Sequence[int] = (256, 512, 1024, 2048),
               head_channels: int = 256, pyramid_groups: int = 32, head_groups: int = 16,
               dropout: float = 0.0, spectral_positions: str = "table",
               wavelengths: Sequence[float] | None = None, fwhm: Sequence[float] | None = None):
    super().__init__()
    modes = spectral.wavelengths_module().POSITION_MODES
    if spectral_positions not in modes:
      raise ValueError(f"spectral_positions must be one of {modes}, got {spectral_positions!r}")
    for name, value, allowed in (("task", task, TASKS), ("head", head, HEADS),
                                 ("fusion", fusion, FUSIONS)):
      if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    self.task, self.head_type, self.fusion = task, head, fusion
    self.feature_layers = [int(i) for i in feature_layers]
    self.plan = spectral.band_plan(spectral_positions, t_patch_size, wavelengths, fwhm)
    pe = PatchEmbed(img_size, patch_size, 1, embed_dim, num_frames, t_patch_size)
    side = pe.input_size[1]
    groups = self.plan.num_groups if self.plan is not None else pe.input_size[0]
    self.num_frames = groups * t_patch_size             # input planes
    self.pos_embed_spatial = nn.Parameter(torch.zeros(1, side * side, embed_dim))
    self.pos_embed_temporal = nn.Parameter(torch.zeros(1, pe.input_size[0], embed_dim))
    if self.plan is not None:
      self.pos_embed_spectral_residual = spectral.residual(embed_dim)
    self.patch_embed = pe
    self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth)])
    self.norm = layer_norm(embed_dim)          # unused, as in the official modules
    dates = 2 if task == "change" and fusion == "concat" else 1
    hc = head_channels
    self.cls_seg = nn.Sequential(nn.Conv2d(hc, num_classes, 3, padding=1))
    if head == "official":
      c0, c1, c2, c3 = pyramid_channels
      self.decoder = FPNHead(pyramid_channels, hc, head_groups, dropout, "max")
      widths, c_in = (max(c0, c1), c1, c2, c3), embed_dim * dates
      for i, (scale, width, c) in enumerate(zip((8, 4, 2, 1), widths, pyramid_channels)):
        setattr(self, f"conv{i}", conv_norm_act(c_in, width, pyramid_groups, dropout, scale, c))
      self.fc = nn.Sequential(nn.Linear(groups, 1))
    else:
      c_in = groups * embed_dim * dates
      self.decoder = FPNHead((hc,) * 4, hc, head_groups, dropout, "avg")
      self.neck = nn.ModuleList([nn.ConvTranspose2d(c_in, hc, 4, stride=4),
                                 nn.ConvTranspose2d(c_in, hc, 2, stride=2),
                                 nn.Conv2d(c_in, hc, 1), nn.Conv2d(c_in, hc, 1)])

  def tokens(self, x: torch.Tensor, layers) -> list[torch.Tensor]:
    """Block outputs [B, L, D] of `layers` (token order: spectral group, row, col)."""
    vol = as_volume(x, self.num_frames)
    if vol.shape[2] != self.num_frames:
      raise ValueError(f"input {tuple(x.shape)}: this model takes {self.num_frames} bands "
                       "(the band set it was built for), in order")
    x = self.patch_embed(vol, any_bands=self.plan is not None)
    n, t, s, d = x.shape
    temporal = self.pos_embed_temporal
    if self.plan is not None:
      temporal = spectral.at_wavelengths(temporal, self.plan, self.pos_embed_spectral_residual)
    pos = full_pos_embed(self.pos_embed_spatial, temporal)
    return run_blocks(self.blocks, x.reshape(n, t * s, d) + pos, layers)

  def _grid(self, tokens: torch.Tensor, hw) -> torch.Tensor:
    """[B, T'H'W', D] -> [B, T', H', W', D]."""
    return tokens.reshape(tokens.shape[0], -1, hw[0], hw[1], tokens.shape[-1])

  def features(self, x: torch.Tensor) -> list[torch.Tensor]:
    """One date's feature maps: official [B, D, H', W'] (groups fused by `fc`); PANGAEA one
    [B, T'D, H', W'] per feature layer (groups concatenated on channels)."""
    p = self.patch_embed.patch_size
    hw = (x.shape[-2] // p, x.shape[-1] // p)
    if self.head_type == "official":
      g = self._grid(self.tokens(x, [-1])[0], hw)                 # [B, T', H', W', D]
      fused = self.fc(g.permute(0, 2, 3, 4, 1))[..., 0]          # [B, H', W', D]
      return [fused.permute(0, 3, 1, 2)]
    out = []
    for t in self.tokens(x, self.feature_layers):
      g = self._grid(t, hw).permute(0, 2, 3, 1, 4)               # [B, H', W', T', D]
      out.append(g.reshape(*g.shape[:3], -1).permute(0, 3, 1, 2))
    return out

  def _combine(self, a: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    if b is None:
      return a
    return a - b if self.fusion == "difference" else torch.cat([a, b], dim=1)

  def forward(self, x: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
    """[B, C, H, W] (and the second date for change) -> [B, K, H, W]."""
    change = self.task == "change"
    if change != (x2 is not None):
      raise ValueError("a change model takes two dates: model(x1, x2)" if change else
                       "a segmentation model takes one image; got a second date")
    fa = self.features(x)
    fb = self.features(x2) if change else [None] * len(fa)
    maps = [self._combine(a, b) for a, b in zip(fa, fb)]
    if self.head_type == "official":
      levels = [getattr(self, f"conv{i}")(maps[0]) for i in range(4)]
    else:
      levels = [self.neck[0](maps[0]), self.neck[1](maps[1]), self.neck[2](maps[2]),
                self.neck[3](F.max_pool2d(maps[3], 2))]
    y = resize(self.cls_seg(self.decoder(levels)), x.shape[-2:])
    return torch.log_softmax(y, dim=1) if change else y


_DENSE_FIELDS = ("img_size", "patch_size", "num_frames", "t_patch_size", "embed_dim", "depth",
                 "num_heads", "mlp_ratio", "num_classes", "task", "head", "fusion",
                 "feature_layers", "pyramid_channels", "head_channels", "pyramid_groups",
                 "head_groups", "spectral_positions", "wavelengths", "fwhm")


def dense_kwargs(man, where) -> dict:
  """DenseModel kwargs of a dense manifest (target "dense"); ValueError naming the field that
  is missing or contradicts another (bands, num_classes, classes, tile.num_dates)."""
  ck = man.get("constructor_kwargs")
  if not isinstance(ck, dict) or any(k not in ck for k in ("img_size", "task", "num_classes")):
    raise ValueError(f"{where}: manifest field 'constructor_kwargs': missing or incomplete "
                     "for a dense model")
  kw = {k: v for k, v in ck.items() if k in _DENSE_FIELDS}
  bands = man.get("bands") or []
  planes = len(kw["wavelengths"]) if kw.get("wavelengths") else int(kw.get("num_frames", 12))
  if len(bands) != planes:
    raise ValueError(f"{where}: manifest field 'bands': {len(bands)} names for "
                     f"{planes} input planes")
  classes = man.get("classes")
  if classes is not None and len(classes) != int(kw["num_classes"]):
    raise ValueError(f"{where}: manifest field 'classes': {len(classes)} names for "
                     f"{kw['num_classes']} classes")
  dates = (man.get("tile") or {}).get("num_dates")
  if dates is not None and int(dates) != (2 if kw["task"] == "change" else 1):
    raise ValueError(f"{where}: manifest field 'tile.num_dates': {dates} for task "
                     f"{kw['task']!r}")
  return kw
