"""Model variants: one table of architecture hyperparameters, named after the official factories.

`ModelSpec` is the complete, hashable description of an architecture. Runtime knobs that do not
change the parameters (dtype, scan, remat, official-compatibility switches) live on the Flax
modules, not here.

This file imports only the standard library: the PyTorch package (spectralgpt_jax/torch/
factories.py) reads it as a file, without jax, so keep it that way.
"""

from __future__ import annotations

import dataclasses


KINDS = ("mae", "vit", "seg", "change")
# How a spectral group finds its position (models/wavelengths.py): "table" = row g of the learned
# table (Sentinel-2 band order only, the official model); "wavelength" = interpolated over the
# table at the group's wavelengths plus a learned residual (any band set).
SPECTRAL_POSITIONS = ("table", "wavelength")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """Architecture of a SpectralGPT MAE or fine-tuning ViT.

  Attributes:
    kind: "mae" (pretraining), "vit" (fine-tuning classifier), "seg" (segmentation) or
      "change" (Siamese change detection over two dates).
    img_size: input height and width in pixels (must be a multiple of `patch`).
    patch: spatial tubelet side p (pixels).
    t_patch: spectral tubelet depth t (bands per token).
    num_bands: input bands per date (12 for SpectralGPT: B1-B8, B8A, B9, B11, B12).
    num_dates: dates kept as their own token axis (1 = single image). A time series can instead
      be folded into the band axis (num_bands = dates x bands, num_dates = 1): same tokens, but
      one spectral position table over all dates' groups instead of spectral + date tables.
    embed_dim, depth, num_heads: encoder width, number of blocks, attention heads.
    decoder_*: MAE decoder (every official variant uses 512 / 4 / 16).
    mlp_ratio: MLP hidden width / embed width.
    num_classes: classifier outputs (vit), classes per pixel (seg, change).
    official_name: the factory in the official PyTorch code this matches.
    spectral_positions: "table" (default; every official and existing checkpoint) or
      "wavelength": positions from the input bands' wavelengths, so any band set whose count
      is a multiple of t_patch is accepted (the table stays anchored at the 12 Sentinel-2
      bands, so num_bands must be 12; adds the `*pos_embed_spectral_residual` params).
  """

  kind: str
  img_size: int
  patch: int = 8
  t_patch: int = 3
  num_bands: int = 12
  num_dates: int = 1
  embed_dim: int = 768
  depth: int = 12
  num_heads: int = 12
  decoder_embed_dim: int = 512
  decoder_depth: int = 4
  decoder_num_heads: int = 16
  mlp_ratio: float = 4.0
  num_classes: int = 10
  official_name: str = ""
  spectral_positions: str = "table"

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"ModelSpec.kind must be one of {KINDS}, got {self.kind!r}")
    if self.spectral_positions not in SPECTRAL_POSITIONS:
      raise ValueError(f"ModelSpec.spectral_positions must be one of {SPECTRAL_POSITIONS}, "
                       f"got {self.spectral_positions!r}")
    if self.spectral_positions == "wavelength" and self.num_bands != 12:
      raise ValueError(f"spectral_positions='wavelength' anchors the table at the 12 Sentinel-2 "
                       f"bands: num_bands must be 12, got {self.num_bands} (the input may have "
                       "any band count)")
    if self.img_size % self.patch:
      raise ValueError(f"img_size {self.img_size} is not a multiple of patch {self.patch}")
    if self.num_bands % self.t_patch:
      raise ValueError(f"num_bands {self.num_bands} is not a multiple of t_patch {self.t_patch}")
    if self.embed_dim % self.num_heads:
      raise ValueError(f"embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}")

  @property
  def spectral_groups(self) -> int:
    """Spectral tokens per location and date (T' in the official code)."""
    return self.num_bands // self.t_patch

  @property
  def grid(self) -> tuple[int, int, int]:
    """Token grid (dates x spectral groups, rows H', cols W'); token index is row-major in it."""
    side = self.img_size // self.patch
    return (self.num_dates * self.spectral_groups, side, side)

  @property
  def num_tokens(self) -> int:
    t, h, w = self.grid
    return t * h * w

  @property
  def patch_dim(self) -> int:
    """Values per token: t x p x p (the official hard-codes this as 192)."""
    return self.t_patch * self.patch * self.patch


_BASE = dict(embed_dim=768, depth=12, num_heads=12)
_LARGE = dict(embed_dim=1024, depth=24, num_heads=16)
_HUGE = dict(embed_dim=1280, depth=32, num_heads=16)
# Tiny: for tests and the CPU demo. Same structure, so every code path is exercised.
_TINY = dict(embed_dim=64, depth=2, num_heads=4, decoder_embed_dim=32, decoder_depth=1,
             decoder_num_heads=4)


def _mae(name: str, img: int, size: dict, **kw) -> tuple[str, ModelSpec]:
  official = name if not name.startswith("mae_vit_tiny") else ""
  return name, ModelSpec(kind="mae", img_size=img, official_name=official, **size, **kw)


def _vit(name: str, img: int, size: dict, **kw) -> tuple[str, ModelSpec]:
  official = name if not name.startswith("vit_tiny") else ""
  size = {k: v for k, v in size.items() if not k.startswith("decoder")}
  return name, ModelSpec(kind="vit", img_size=img, official_name=official, **size, **kw)


def _dense(name: str, kind: str, img: int, size: dict, official: str = "",
           **kw) -> tuple[str, ModelSpec]:
  size = {k: v for k, v in size.items() if not k.startswith("decoder")}
  return name, ModelSpec(kind=kind, img_size=img, official_name=official, **size, **kw)


VARIANTS: dict[str, ModelSpec] = dict([
    # Pretraining (models_mae_spectral.py).
    _mae("mae_vit_base_patch8_96", 96, _BASE),
    _mae("mae_vit_base_patch8_128", 128, _BASE),
    _mae("mae_vit_base_patch8_2tensor_128", 128, _BASE, t_patch=2),
    _mae("mae_vit_large_patch8_96", 96, _LARGE),
    _mae("mae_vit_large_patch8_128", 128, _LARGE),
    _mae("mae_vit_huge_patch8_96", 96, _HUGE),
    _mae("mae_vit_huge_patch8_128", 128, _HUGE),
    _mae("mae_vit_tiny_patch8_32", 32, _TINY),
    # Fine-tuning classifiers (models_vit_tensor.py). vit_huge_patch8_128 uses t_patch 12 as the
    # official factory does; to fine-tune the t=3 huge MAE pass t_patch=3 to get_model.
    _vit("vit_base_patch8", 96, _BASE),
    _vit("vit_base_patch8_128", 128, _BASE),
    _vit("vit_large_patch8_128", 128, _LARGE),
    _vit("vit_huge_patch8_128", 128, _HUGE, t_patch=12),
    _vit("vit_tiny_patch8_32", 32, _TINY),
    # Dense tasks (spec section 5): SegMunich segmentation (13 classes) and OSCD change
    # detection (2 classes), both on the base encoder at 128 px (patch 8, t 3).
    _dense("seg_vit_base_patch8_128", "seg", 128, _BASE, num_classes=13,
           official="SegMunich models_vit_tensor_CD_2.vit_base_patch8"),
    _dense("cd_vit_base_patch8_128", "change", 128, _BASE, num_classes=2,
           official="OSCD models_vit_tensor_CD.vit_base_patch16"),
    _dense("seg_vit_tiny_patch8_32", "seg", 32, _TINY, num_classes=2),
    _dense("cd_vit_tiny_patch8_32", "change", 32, _TINY, num_classes=2),
])
