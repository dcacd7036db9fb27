"""SpectralGPT masked autoencoder (official `models_mae_spectral.MaskedAutoencoderViT`).

Pure: the model returns predictions and the mask; the loss lives in `spectralgpt_jax.losses`.
Parameter names mirror the official state_dict (see `spectralgpt_jax.export.param_mapping`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from spectralgpt_jax.models import masking, posembed
from spectralgpt_jax.models.attention import dense
from spectralgpt_jax.models.patch_embed import PatchEmbed, fold_dates, patchify
from spectralgpt_jax.models.runtime import DEFAULT, Runtime, RuntimeFields
from spectralgpt_jax.models.transformer import TransformerStack, layer_norm
from spectralgpt_jax.models.variants import ModelSpec
from spectralgpt_jax.sharding import axis_names as ax


def token_grid(spec: ModelSpec, x_shape: tuple[int, ...]) -> tuple[int, int, int]:
  """Token grid (dates*groups, H', W') for an input [B, C, H, W] or [B, T, C, H, W]."""
  if spec.num_dates > 1:
    if len(x_shape) != 5 or x_shape[1] != spec.num_dates:
      raise ValueError(f"input {tuple(x_shape)}: the model expects a series [B, "
                       f"{spec.num_dates}, {spec.num_bands}, H, W]")
    bands = x_shape[2]
  else:  # a series [B, T, C, H, W] is folded into T*C bands
    bands = x_shape[-3] * (x_shape[1] if len(x_shape) == 5 else 1)
  if bands != spec.num_bands:
    raise ValueError(f"input {tuple(x_shape)} has {bands} bands per date; the model expects "
                     f"{spec.num_bands} (resize the spectral position table to change this)")
  h, w = x_shape[-2:]
  if h % spec.patch or w % spec.patch:
    raise ValueError(f"input size {h}x{w} is not a multiple of patch {spec.patch}")
  return (spec.num_dates * spec.spectral_groups, h // spec.patch, w // spec.patch)


def full_pos_embed(tables: tuple[jax.Array, ...], spec: ModelSpec,
                   grid: tuple[int, int, int]) -> jax.Array:
  """[1, L, D] embedding for `grid`; the spatial table is resized (bicubic) if the grid differs."""
  spatial, rest = tables[0], tables[1:]
  side = spec.img_size // spec.patch
  spatial = posembed.resize_spatial(spatial, grid[1:], (side, side))
  return posembed.combine(spatial, *rest)


class SpectralMAE(RuntimeFields, nn.Module):
  """Masked autoencoder over 3D spatial-spectral tokens.

  Attributes:
    spec: architecture (see `variants.VARIANTS`).
    runtime: dtypes, scanning and rematerialisation of both stacks, implementations of the
      products (runtime.Runtime); parameters and outputs do not depend on the implementations.
  Input: cube [B, C, H, W] (or [B, T, C, H, W]) in SpectralGPT band order, normalised.
  """

  spec: ModelSpec
  runtime: Runtime = DEFAULT

  def setup(self):
    s, rt = self.spec, self.runtime
    dt, pdt = rt.dtype, rt.param_dtype
    _, h, w = s.grid
    stack = dict(mlp_ratio=s.mlp_ratio, runtime=rt)
    self.patch_embed = PatchEmbed(s.embed_dim, s.t_patch, s.patch, dt, pdt, rt.ops)
    self.pos_tables = posembed.make_tables(self, "", s.embed_dim, h * w, s.spectral_groups,
                                           s.num_dates)
    self.blocks = TransformerStack(s.depth, s.num_heads, **stack)
    self.norm = layer_norm(dtype=dt, param_dtype=pdt)
    self.decoder_embed = dense(s.decoder_embed_dim, (ax.EMBED, None), dtype=dt,
                               param_dtype=pdt, ops=rt.ops)
    self.mask_token = self.param(
        "mask_token", nn.with_logical_partitioning(nn.initializers.normal(0.02),
                                                   (None, None, ax.EMBED)),
        (1, 1, s.decoder_embed_dim))
    self.decoder_pos_tables = posembed.make_tables(self, "decoder_", s.decoder_embed_dim, h * w,
                                                   s.spectral_groups, s.num_dates)
    self.decoder_blocks = TransformerStack(s.decoder_depth, s.decoder_num_heads, **stack)
    self.decoder_norm = layer_norm(dtype=dt, param_dtype=pdt)
    self.decoder_pred = dense(s.patch_dim, (ax.EMBED, ax.PATCH_IN), dtype=dt, param_dtype=pdt,
                              ops=rt.ops)

  def encode(self, x: jax.Array, noise: jax.Array,
             mask_ratio: float) -> tuple[jax.Array, masking.MaskInfo]:
    """cube -> (latent [B, K, D] after the final norm, MaskInfo over L tokens)."""
    grid = token_grid(self.spec, x.shape)
    info = masking.random_masking(noise, mask_ratio)
    # Masking first, then embedding only the kept tubelets: the patch embedding is per token,
    # so this equals the official embed-all-then-gather at a tenth of the cost (r = 0.9).
    tubelets = patchify(fold_dates(x), self.spec.t_patch, self.spec.patch)
    tokens = self.patch_embed.embed(masking.gather_tokens(tubelets, info.ids_keep))
    # Rows of the one [L, D] table (not of a batch-broadcast copy): the backward then adds into
    # [L, D] instead of zero-filling, scattering into and summing a [B, L, D] array.
    pos = jnp.take(full_pos_embed(self.pos_tables, self.spec, grid)[0], info.ids_keep, axis=0)
    latent = self.blocks(tokens + pos.astype(tokens.dtype))
    return self.norm(latent), info

  def decode(self, latent: jax.Array, info: masking.MaskInfo,
             grid: tuple[int, int, int]) -> jax.Array:
    """latent [B, K, D] -> predicted tubelets [B, L, t*p*p] for every token (masked or not)."""
    x = self.decoder_embed(latent)
    b, keep, d = x.shape
    length = info.ids_restore.shape[1]
    mask_tokens = jnp.broadcast_to(self.mask_token.astype(x.dtype), (b, length - keep, d))
    x = masking.permute_tokens(jnp.concatenate([x, mask_tokens], axis=1), info.ids_restore,
                               info.ids_shuffle)
    x = x + full_pos_embed(self.decoder_pos_tables, self.spec, grid).astype(x.dtype)
    x = self.decoder_norm(self.decoder_blocks(x))
    return self.decoder_pred(x).astype(jnp.float32)

  def __call__(self, x: jax.Array, *, mask_ratio: float = 0.9,
               noise: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """cube -> (pred [B, L, t*p*p] float32, aux {"mask", "ids_restore", "latent"}).

    `noise` [B, L] fixes the masking (official convention: smallest noise is kept); without it
    uniform noise is drawn from the "masking" rng stream.
    """
    grid = token_grid(self.spec, x.shape)
    length = grid[0] * grid[1] * grid[2]
    if noise is None:
      noise = jax.random.uniform(self.make_rng("masking"), (x.shape[0], length))
    latent, info = self.encode(x, noise, mask_ratio)
    pred = self.decode(latent, info, grid)
    return pred, {"mask": info.mask, "ids_restore": info.ids_restore, "latent": latent}
