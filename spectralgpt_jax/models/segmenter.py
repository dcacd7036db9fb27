"""Dense prediction over SpectralGPT tokens: segmentation (SegMunich) and Siamese change
detection (OSCD), spec §5.

Encoder: the SpectralViT encoder (patch embed + separable positions + blocks, the official
`sep_pos_embed=True` models), parameters at the top level under the MAE's names so a pretrained
MAE loads by `init_from`. The official models keep an unused final `norm` (1,536 parameters at
base); it is not created here.

Heads (`head`):
  "official"  last block's tokens (no final norm) [B, T', H'W', D]; `fc` (official Linear(T', 1))
              fuses the T' spectral-group tokens into [B, H', W', D]; change detection applies
              the encoder and `fc` to both dates (shared weights) and takes xx1 - xx2
              (`fusion="difference"`) or concatenates them ("concat"); conv0..3 pyramid
              (x8/x4/x2/x1), FPNHead, 3x3 `cls_seg`.
  "pangaea"   the PANGAEA protocol: features of blocks `feature_layers` (0-based, default 3, 5,
              7, 11), spectral groups concatenated on channels [B, H', W', T'D]; rescaled to a
              4-level pyramid (x4 and x2 transposed convs, x1 1x1 conv, /2 max pool + 1x1 conv)
              of `head_channels` (512), FPNHead with average pyramid pooling, classifier, then
              the logits resized (bilinear) to the input size.
Change detection outputs log-probabilities (the official LogSoftmax); segmentation logits.
`freeze_encoder=True` runs the encoder deterministically (no drop path) under stop_gradient.

Any band set (spec.spectral_positions == "wavelength"): the bands are fixed when the model is
built (`wavelengths=`, `fwhm=`: nm per input band in group order, as
data_pipelines.sensors.model_wavelengths gives them; default the 12 Sentinel-2 bands). Their
number of groups G sets the token grid, `fc`'s input (G, not 4) and the "pangaea" channels
(G*D); positions as in the MAE (table interpolated at the groups' wavelengths plus the
zero-initialised `pos_embed_spectral_residual`), so on Sentinel-2 input the outputs equal the
table model's bit for bit.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from spectralgpt_jax.models import posembed
from spectralgpt_jax.models.dense_layer import Dense
from spectralgpt_jax.models.mae import band_plan, full_pos_embed, token_grid
from spectralgpt_jax.models.patch_embed import PatchEmbed, fold_dates, torch_default_bias_init
from spectralgpt_jax.models.runtime import DEFAULT, Runtime, RuntimeFields
from spectralgpt_jax.models.transformer import TransformerStack
from spectralgpt_jax.models.upernet import (Classifier, FPNHead, OfficialPyramid, PangaeaNeck,
                                            resize_bilinear)
from spectralgpt_jax.models.variants import ModelSpec

HEADS = ("official", "pangaea")
FUSIONS = ("difference", "concat")


class SpectralSegmenter(RuntimeFields, nn.Module):
  """SpectralViT encoder + dense head.

  Attributes:
    spec: architecture, kind "seg" (one image) or "change" (two dates); spec.num_classes
      outputs per pixel.
    head, fusion: see the module docstring.
    feature_layers: encoder blocks the "pangaea" head reads (0-based).
    pyramid_channels: official pyramid widths (256, 512, 1024, 2048).
    head_channels: FPNHead width (official 256, PANGAEA 512).
    pyramid_groups, head_groups: GroupNorm groups (official 32 and 16).
    drop_path_rate: encoder stochastic depth (official 0.5).
    dropout: head dropout (official 0.5); `pyramid_dropout` for conv0..3 (official: 0.5 for
      segmentation, none in the change model), None = `dropout`.
    freeze_encoder: deterministic encoder under stop_gradient (decoder-only training).
    wavelengths, fwhm: the input bands (nm, group order) of a spec with spectral_positions
      "wavelength" (None: the 12 Sentinel-2 bands); must be None for "table".
    runtime: dtypes, scanning, rematerialisation, implementations (runtime.Runtime).
  Input cube [B, C, H, W] (and cube2 for "change"); output [B, H, W, K] float32.
  """

  spec: ModelSpec
  head: str = "official"
  fusion: str = "difference"
  feature_layers: Sequence[int] = (3, 5, 7, 11)
  pyramid_channels: Sequence[int] = (256, 512, 1024, 2048)
  head_channels: int = 256
  pyramid_groups: int = 32
  head_groups: int = 16
  drop_path_rate: float = 0.5
  dropout: float = 0.5
  pyramid_dropout: float | None = None
  freeze_encoder: bool = False
  wavelengths: Sequence[float] | None = None
  fwhm: Sequence[float] | None = None
  runtime: Runtime = DEFAULT

  def setup(self):
    s, rt = self.spec, self.runtime
    if s.kind not in ("seg", "change"):
      raise ValueError(f"SpectralSegmenter needs spec.kind 'seg' or 'change', got {s.kind!r}")
    if self.head not in HEADS:
      raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
    if self.fusion not in FUSIONS:
      raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
    if s.spectral_positions == "table" and self.wavelengths is not None:
      raise ValueError("wavelengths= needs spectral_positions='wavelength' (a table-position "
                       "model takes the 12 Sentinel-2 bands)")
    groups = self._plan.num_groups if self._plan is not None else s.spectral_groups
    _, h, w = s.grid
    self.patch_embed = PatchEmbed(s.embed_dim, s.t_patch, s.patch, rt.dtype, rt.param_dtype, rt.ops)
    self.pos_tables = posembed.make_tables(self, "", s.embed_dim, h * w, s.spectral_groups,
                                           s.num_dates)
    if s.spectral_positions == "wavelength":
      self.pos_embed_spectral_residual = posembed.spectral_residual(s.embed_dim)
    rates = tuple(float(r) for r in np.linspace(0.0, self.drop_path_rate, s.depth))
    self.blocks = TransformerStack(s.depth, s.num_heads, s.mlp_ratio, rates, rt)
    kw = dict(runtime=rt)
    if self.head == "official":
      self.fc = Dense(1, dtype=rt.dtype, param_dtype=rt.param_dtype, ops=rt.ops,
                      kernel_init=nn.with_logical_partitioning(
                          nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                          (None, None)),
                      bias_init=nn.with_logical_partitioning(
                          torch_default_bias_init(groups), (None,)))
      drop = self.dropout if self.pyramid_dropout is None else self.pyramid_dropout
      self.pyramid = OfficialPyramid(tuple(self.pyramid_channels), self.pyramid_groups, drop,
                                     **kw)
    else:
      self.neck = PangaeaNeck(self.head_channels, **kw)
    self.decoder = FPNHead(self.head_channels, self.head_groups, self.dropout,
                           pool="max" if self.head == "official" else "avg", **kw)
    self.cls_seg = Classifier(s.num_classes, rt.param_dtype)

  @property
  def _plan(self):
    """The band set's group plan (wavelength positions), None for a table-position model."""
    fwhm = None if self.fwhm is None else tuple(float(f) for f in self.fwhm)
    centres = None if self.wavelengths is None else tuple(float(c) for c in self.wavelengths)
    return band_plan(self.spec, centres, fwhm)

  # ---------------------------------------------------------------------------- encoder
  def encode(self, x: jax.Array, *, train: bool = False,
             collect: Sequence[int] = ()) -> tuple[jax.Array, list[jax.Array]]:
    """cube -> (last block's tokens [B, L, D] (no final norm), [tokens of blocks `collect`])."""
    plan = self._plan
    grid = token_grid(self.spec, x.shape, plan)
    tokens = self.patch_embed(fold_dates(x))
    residual = getattr(self, "pos_embed_spectral_residual", None)
    tokens = tokens + full_pos_embed(self.pos_tables, self.spec, grid, plan,
                                     residual).astype(tokens.dtype)
    deterministic = not train or self.freeze_encoder
    out = self.blocks(tokens, deterministic=deterministic, collect=tuple(collect))
    last, picked = out if collect else (out, [])
    if self.freeze_encoder:
      last, picked = jax.lax.stop_gradient((last, picked))
    return last, list(picked)

  def _grid_view(self, tokens: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """[B, T'H'W', D] -> [B, T', H', W', D]."""
    b, _, d = tokens.shape
    return tokens.reshape(b, -1, hw[0], hw[1], d)

  def _official_features(self, x: jax.Array, train: bool) -> jax.Array:
    """[B, H', W', D]: spectral groups fused by `fc`."""
    hw = (x.shape[-2] // self.spec.patch, x.shape[-1] // self.spec.patch)
    tokens, _ = self.encode(x, train=train)
    grid = self._grid_view(tokens, hw)                        # [B, T', H', W', D]
    return self.fc(jnp.moveaxis(grid, 1, -1))[..., 0]         # [B, H', W', D]

  def _pangaea_features(self, x: jax.Array, train: bool) -> list[jax.Array]:
    """Per layer [B, H', W', T'D]: spectral groups concatenated on channels."""
    hw = (x.shape[-2] // self.spec.patch, x.shape[-1] // self.spec.patch)
    _, picked = self.encode(x, train=train, collect=tuple(self.feature_layers))
    out = []
    for t in picked:
      g = self._grid_view(t, hw)                              # [B, T', H', W', D]
      out.append(jnp.moveaxis(g, 1, 3).reshape(*g.shape[0:1], *hw, -1))
    return out

  def _combine(self, a: jax.Array, b: jax.Array | None) -> jax.Array:
    if b is None:
      return a
    return a - b if self.fusion == "difference" else jnp.concatenate([a, b], -1)

  def __call__(self, x: jax.Array, x2: jax.Array | None = None, *,
               train: bool = False) -> jax.Array:
    change = self.spec.kind == "change"
    if change and x2 is None:
      raise ValueError("a change-detection model takes two dates: model(cube, cube2)")
    if not change and x2 is not None:
      raise ValueError("a segmentation model takes one image; got a second date")
    if self.head == "official":
      a = self._official_features(x, train)
      b = self._official_features(x2, train) if change else None
      levels = self.pyramid(self._combine(a, b), train=train)
    else:
      fa = self._pangaea_features(x, train)
      fb = self._pangaea_features(x2, train) if change else [None] * len(fa)
      levels = self.neck([self._combine(a, b) for a, b in zip(fa, fb)])
    y = self.cls_seg(self.decoder(levels, train=train))
    y = resize_bilinear(y, x.shape[-2:])
    return jax.nn.log_softmax(y, -1) if change else y
