"""Fine-tuning ViT over SpectralGPT tokens (official `models_vit_tensor.VisionTransformer`).

Defaults are the clean behaviour; two switches reproduce the official quirks exactly:
  pos_embed="official_zeros": a single learned `pos_embed` [1, L, D] starting at zero (the
    official fine-tuning never loads the pretrained separable tables); default "separable"
    keeps and fine-tunes the pretrained spatial + spectral tables.
  pool="official_skip_first": mean over tokens 1..L-1 (a leftover of cls-token code; there is no
    cls token); default "mean" averages every token.
In both modes `norm` is applied after pooling (the official fc_norm placement).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from spectralgpt_jax.models import posembed
from spectralgpt_jax.models.mae import band_plan, drop_mask, full_pos_embed, token_grid
from spectralgpt_jax.models.dense_layer import Dense
from spectralgpt_jax.models.patch_embed import PatchEmbed, fold_dates, torch_default_bias_init
from spectralgpt_jax.models.runtime import DEFAULT, Runtime, RuntimeFields
from spectralgpt_jax.models.transformer import TransformerStack, layer_norm
from spectralgpt_jax.models.variants import ModelSpec
from spectralgpt_jax.sharding import axis_names as ax

POS_EMBED_MODES = ("separable", "official_zeros")
POOL_MODES = ("mean", "official_skip_first")


class SpectralViT(RuntimeFields, nn.Module):
  """Classifier: patch embed + positions -> blocks -> pool -> norm -> dropout -> head.

  Attributes:
    spec: architecture (kind "vit"); spec.num_classes outputs.
    drop_path_rate: stochastic depth, linearly increasing over layers (official default 0.2).
    dropout: dropout before the head.
    pos_embed, pool: see the module docstring.
    runtime: dtypes, scanning, rematerialisation, implementations (runtime.Runtime).
  Input cube [B, C, H, W]; output logits [B, num_classes] float32.
  """

  spec: ModelSpec
  drop_path_rate: float = 0.2
  dropout: float = 0.0
  pos_embed: str = "separable"
  pool: str = "mean"
  runtime: Runtime = DEFAULT

  def setup(self):
    s, rt = self.spec, self.runtime
    dt, pdt = rt.dtype, rt.param_dtype
    if self.pos_embed not in POS_EMBED_MODES:
      raise ValueError(f"pos_embed must be one of {POS_EMBED_MODES}, got {self.pos_embed!r}")
    if self.pool not in POOL_MODES:
      raise ValueError(f"pool must be one of {POOL_MODES}, got {self.pool!r}")
    _, h, w = s.grid
    self.patch_embed = PatchEmbed(s.embed_dim, s.t_patch, s.patch, dt, pdt, rt.ops)
    if self.pos_embed == "separable":
      self.pos_tables = posembed.make_tables(self, "", s.embed_dim, h * w, s.spectral_groups,
                                             s.num_dates)
      if s.spectral_positions == "wavelength":
        self.pos_embed_spectral_residual = posembed.spectral_residual(s.embed_dim)
    elif s.spectral_positions == "wavelength":
      raise ValueError("spectral_positions='wavelength' needs pos_embed='separable' (the "
                       "official_zeros table has one row per token of the Sentinel-2 grid)")
    else:
      self.pos_table = self.param(
          "pos_embed", nn.with_logical_partitioning(nn.initializers.zeros, posembed.POS_AXES),
          (1, s.num_tokens, s.embed_dim))
    rates = tuple(float(r) for r in np.linspace(0.0, self.drop_path_rate, s.depth))
    self.blocks = TransformerStack(s.depth, s.num_heads, s.mlp_ratio, rates, rt)
    self.norm = layer_norm(dtype=dt, param_dtype=pdt)
    self.drop = nn.Dropout(self.dropout)
    # main_finetune re-initialises the head weight with trunc_normal_(std=2e-5).
    self.head = Dense(
        s.num_classes, dtype=dt, param_dtype=pdt, ops=rt.ops,
        kernel_init=nn.with_logical_partitioning(nn.initializers.truncated_normal(2e-5),
                                                 (ax.EMBED, ax.CLASSES)),
        bias_init=nn.with_logical_partitioning(torch_default_bias_init(s.embed_dim),
                                               (ax.CLASSES,)))

  def features(self, x: jax.Array, *, train: bool = False, wavelengths=None, fwhm=None,
               drop_groups: tuple[int, ...] = ()) -> jax.Array:
    """cube -> token features [B, L, D] after the last block (no final norm, as official).

    wavelengths, fwhm, drop_groups: as `SpectralMAE.encode`; the tokens of dropped groups are
    left out (L counts only the kept ones, in grid order).
    """
    plan = band_plan(self.spec, wavelengths, fwhm)
    grid = token_grid(self.spec, x.shape, plan)
    tokens = self.patch_embed(fold_dates(x))
    if self.pos_embed == "separable":
      residual = getattr(self, "pos_embed_spectral_residual", None)
      pos = full_pos_embed(self.pos_tables, self.spec, grid, plan, residual)
    else:
      if grid != self.spec.grid:
        raise ValueError(f"pos_embed='official_zeros' is fixed to grid {self.spec.grid}, "
                         f"input gives {grid}")
      pos = self.pos_table
    tokens = tokens + pos.astype(tokens.dtype)
    missing = drop_mask(grid, tuple(drop_groups))
    if missing is not None:
      tokens = jnp.take(tokens, np.flatnonzero(~missing), axis=1)
    return self.blocks(tokens, deterministic=not train)

  def pooled(self, x: jax.Array, *, train: bool = False, **bands) -> jax.Array:
    """cube -> pooled, normed embedding [B, D]; `bands`: wavelengths, fwhm, drop_groups."""
    tokens = self.features(x, train=train, **bands)
    if self.pool == "official_skip_first":
      tokens = tokens[:, 1:]
    return self.norm(tokens.mean(axis=1))

  def __call__(self, x: jax.Array, *, train: bool = False, **bands) -> jax.Array:
    pooled = self.drop(self.pooled(x, train=train, **bands), deterministic=not train)
    return self.head(pooled).astype(jnp.float32)
