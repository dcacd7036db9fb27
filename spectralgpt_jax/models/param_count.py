"""Parameter counts of a ModelSpec by arithmetic: no module is built, nothing is traced.

The layout counted is the modules' own (checked against `shapes.param_shapes` in the tests):
tubelet embedding Dense [t*p*p -> D], separable position tables (spatial [H'W', D], spectral
[G, D], and [dates, D] with a date axis; with wavelength positions the residual Dense
[NUM_FEATURES -> D]), transformer blocks (2 LayerNorms, q/k/v/proj,
MLP D -> mlp_ratio*D -> D, all with biases), the final LayerNorm; the MAE adds its decoder
(embed Dense, mask token, its own position tables, blocks, LayerNorm, prediction Dense
[Dd -> t*p*p]); the classifier adds its head [D -> num_classes]. The classifier's
pos_embed="official_zeros" (one [L, D] table) is `pos_embed="single"` here. Dense models
(kinds seg / change) have no final norm and add the official head at its default widths
(models/segmenter.py, upernet.py); their `fc` fuses the G spectral groups of the input (G + 1
params): spec.spectral_groups, or for a wavelength-position model built for another band set
its plan's groups (`groups=`, e.g. 3 for a Landsat-like set of 9 planes).
"""

from __future__ import annotations

from spectralgpt_jax.models import wavelengths
from spectralgpt_jax.models.variants import ModelSpec


def _block(dim: int, mlp_ratio: float) -> int:
  hidden = int(dim * mlp_ratio)
  return (2 * dim) * 2 + 4 * (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim)


def _positions(spec: ModelSpec, dim: int, single: bool = False) -> int:
  groups, rows, cols = spec.grid
  if single:
    return groups * rows * cols * dim
  dates = spec.num_dates if spec.num_dates > 1 else 0
  residual = wavelengths.NUM_FEATURES + 1 if spec.spectral_positions == "wavelength" else 0
  return (rows * cols + spec.spectral_groups + dates + residual) * dim


def encoder_params(spec: ModelSpec, *, single_pos_embed: bool = False) -> int:
  """Tubelet embedding, position tables, blocks and final norm of the encoder."""
  dim = spec.embed_dim
  return (spec.patch_dim * dim + dim + _positions(spec, dim, single_pos_embed)
          + spec.depth * _block(dim, spec.mlp_ratio) + 2 * dim)


def decoder_params(spec: ModelSpec) -> int:
  """Everything of the MAE decoder, mask token included (0 for a classifier)."""
  if spec.kind != "mae":
    return 0
  enc, dec = spec.embed_dim, spec.decoder_embed_dim
  return (enc * dec + dec + dec + _positions(spec, dec)
          + spec.decoder_depth * _block(dec, spec.mlp_ratio) + 2 * dec
          + dec * spec.patch_dim + spec.patch_dim)


def dense_head_params(spec: ModelSpec, pyramid=(256, 512, 1024, 2048), head: int = 256,
                      groups: int | None = None) -> int:
  """The official segmentation / change head: fc (over `groups` spectral groups, default
  spec.spectral_groups), conv0..3, FPNHEAD (PPM 1/2/3/6, Conv_fuse, fuse_all, conv_x1) and the
  3x3 classifier."""
  conv = lambda i, o, k=1: i * o * k * k + o
  gn = lambda c: 2 * c
  dim, (c0, c1, c2, c3) = spec.embed_dim, pyramid
  widths = (max(c0, c1), c1, c2, c3)
  total = (spec.spectral_groups if groups is None else groups) + 1       # fc
  for (w, c, k) in zip(widths, pyramid, (8, 4, 2, 1)):                    # conv0..3
    total += conv(dim, w) + gn(w) + (conv(w, c, k) if k > 1 else 0)
  total += 4 * conv(c3, head) + conv(c3 + 4 * head, head) + gn(head)     # PPMHead
  total += sum(conv(c, head) + gn(head) for c in (c2, c1, c0))           # Conv_fuse1..3
  total += 3 * (conv(head, head) + gn(head))                              # Conv_fuse{k}_
  total += conv(4 * head, head) + gn(head) + conv(head, head)            # fuse_all, conv_x1
  return total + conv(head, spec.num_classes, 3)                          # cls_seg


def count_params(spec: ModelSpec, *, pos_embed: str = "separable",
                 groups: int | None = None) -> tuple[int, int]:
  """(all parameters, encoder parameters as the official counts them) of `spec`; a
  classifier's head counts in both. `groups`: the spectral groups a dense model's `fc` fuses
  (its band set's, for wavelength positions; default spec.spectral_groups)."""
  if pos_embed not in ("separable", "single"):
    raise ValueError(f"pos_embed must be 'separable' or 'single', got {pos_embed!r}")
  encoder = encoder_params(spec, single_pos_embed=pos_embed == "single")
  if spec.kind in ("seg", "change"):
    encoder -= 2 * spec.embed_dim                   # no final norm
    return encoder + dense_head_params(spec, groups=groups), encoder
  if spec.kind == "vit":
    encoder += spec.embed_dim * spec.num_classes + spec.num_classes
  return encoder + decoder_params(spec), encoder
