"""The SpectralGPT masked autoencoder in PyTorch, in the official state_dict layout
(`models_mae_spectral.MaskedAutoencoderViT`: separable position tables, no cls token).

  loss, pred, mask = model(x, mask_ratio=0.9, noise=None)   the official forward and loss
  model.forward_features(x, layers=[3, 5, 7, 11])           per-block tokens, no masking
  model.encode(x) / model.embed(x)                          final tokens [B, L, D] / mean [B, D]
x: [B, T, H, W] (T = num_frames bands, normalized as the weights' manifest says) or a series
[B, dates, bands, H, W]; L = T' * H' * W' tokens in (spectral group, row, col) order.

With spectral_positions="wavelength" every method also takes `wavelengths=` and `fwhm=` (nm per
input band, bands grouped in consecutive threes; data_pipelines.sensors) and the feature methods
`drop_groups=` (spectral groups left out of the encoder), as the JAX model does.
"""

from __future__ import annotations

import torch
from torch import nn

from spectralgpt_jax.torch import spectral
from spectralgpt_jax.torch.layers import (PatchEmbed, Block, as_volume, full_pos_embed,
                                          init_linear_and_norm, layer_norm, run_blocks)


class MaskedAutoencoderViT(nn.Module):
  """SpectralGPT MAE. Defaults are the SpectralGPT+ base at 128 px (`mae_vit_base_patch8_128`).

  The loss derives the values per token (t * p * p) instead of the official hard-coded 192, so
  t_patch 2 works; otherwise it is the official loss (spec 1.3), including norm_pix_loss.
  """

  def __init__(self, img_size: int = 128, patch_size: int = 8, in_chans: int = 1,
               embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
               decoder_embed_dim: int = 512, decoder_depth: int = 4, decoder_num_heads: int = 16,
               mlp_ratio: float = 4.0, num_frames: int = 12, t_patch_size: int = 3,
               norm_pix_loss: bool = False, qkv_bias: bool = True,
               spectral_positions: str = "table"):
    super().__init__()
    modes = spectral.wavelengths_module().POSITION_MODES
    if spectral_positions not in modes:
      raise ValueError(f"spectral_positions must be one of {modes}, got {spectral_positions!r}")
    self.spectral_positions = spectral_positions
    self.norm_pix_loss = norm_pix_loss
    self.patch_size, self.t_patch_size = patch_size, t_patch_size
    self.in_chans, self.num_frames = in_chans, num_frames
    pe = PatchEmbed(img_size, patch_size, in_chans, embed_dim, num_frames, t_patch_size)
    self.input_size = pe.input_size                    # (T', H', W')
    t, h, w = pe.input_size
    self.patch_dim = t_patch_size * patch_size * patch_size * in_chans
    # Direct parameters first: the official state_dict order.
    self.pos_embed_spatial = nn.Parameter(torch.zeros(1, h * w, embed_dim))
    self.pos_embed_temporal = nn.Parameter(torch.zeros(1, t, embed_dim))
    self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
    self.decoder_pos_embed_spatial = nn.Parameter(torch.zeros(1, h * w, decoder_embed_dim))
    self.decoder_pos_embed_temporal = nn.Parameter(torch.zeros(1, t, decoder_embed_dim))
    self.patch_embed = pe
    self.blocks = nn.ModuleList(
        [Block(embed_dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)])
    self.norm = layer_norm(embed_dim)
    self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
    self.decoder_blocks = nn.ModuleList(
        [Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias)
         for _ in range(decoder_depth)])
    self.decoder_norm = layer_norm(decoder_embed_dim)
    self.decoder_pred = nn.Linear(decoder_embed_dim, self.patch_dim)
    if spectral_positions == "wavelength":
      self.pos_embed_spectral_residual = spectral.residual(embed_dim)
      self.decoder_pos_embed_spectral_residual = spectral.residual(decoder_embed_dim)
    self.initialize_weights()

  def initialize_weights(self) -> None:
    """Official init: normal(0.02) position tables and mask token, xavier-uniform Conv3d weight
    on its [D, t*p*p] view (bias keeps the PyTorch default), xavier Linears, LayerNorm 1 / 0."""
    for p in (self.pos_embed_spatial, self.pos_embed_temporal,
              self.decoder_pos_embed_spatial, self.decoder_pos_embed_temporal):
      nn.init.trunc_normal_(p, std=0.02)
    w = self.patch_embed.proj.weight.data
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    nn.init.normal_(self.mask_token, std=0.02)
    self.apply(init_linear_and_norm)
    for prefix in ("", "decoder_"):
      layer = getattr(self, f"{prefix}pos_embed_spectral_residual", None)
      if layer is not None:
        spectral.zero_(layer)

  # ------------------------------------------------------------------ tubelets
  def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, L, t*p*p*C]; values ordered (band u, row p, col q, channel c)."""
    n, c, t_all, h_all, w_all = imgs.shape
    p, u = self.patch_size, self.t_patch_size
    t, h, w = t_all // u, h_all // p, w_all // p
    x = imgs.reshape(n, c, t, u, h, p, w, p)
    return torch.einsum("nctuhpwq->nthwupqc", x).reshape(n, t * h * w, u * p * p * c)

  def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
    """[B, L, t*p*p*C] -> [B, C, T, H, W]; the exact inverse of patchify."""
    t, h, w = self.input_size
    p, u, c = self.patch_size, self.t_patch_size, self.in_chans
    x = torch.einsum("nthwupqc->nctuhpwq", x.reshape(x.shape[0], t, h, w, u, p, p, c))
    return x.reshape(x.shape[0], c, t * u, h * p, w * p)

  # ------------------------------------------------------------------ masking
  @staticmethod
  def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
    """x [B, L, D] -> (kept [B, K, D], mask [B, L] 1 = removed, ids_restore [B, L],
    ids_keep [B, K]); K = int(L * (1 - mask_ratio)); the tokens with the smallest noise stay."""
    n, length, d = x.shape
    keep = int(length * (1 - mask_ratio))
    if noise is None:
      noise = torch.rand(n, length, device=x.device)
    if tuple(noise.shape) != (n, length):
      raise ValueError(f"noise has shape {tuple(noise.shape)}; expected {(n, length)}")
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
    mask = torch.ones(n, length, device=x.device, dtype=x.dtype)
    mask[:, :keep] = 0
    return kept, torch.gather(mask, 1, ids_restore), ids_restore, ids_keep

  # ------------------------------------------------------------------ encoder / decoder
  def _tokens(self, imgs: torch.Tensor) -> torch.Tensor:
    """Model input -> embedded tokens [B, L, D] (no positions)."""
    x = self.patch_embed(as_volume(imgs, self.num_frames),
                         any_bands=self.spectral_positions == "wavelength")
    n, t, s, d = x.shape
    return x.reshape(n, t * s, d)

  def _pos(self, prefix: str, wavelengths=None, fwhm=None) -> torch.Tensor:
    """[1, L, D] positions of the encoder ("") or decoder ("decoder_") for the input bands."""
    spatial = getattr(self, f"{prefix}pos_embed_spatial")
    temporal = getattr(self, f"{prefix}pos_embed_temporal")
    plan = spectral.band_plan(self.spectral_positions, self.t_patch_size, wavelengths, fwhm)
    if plan is not None:
      temporal = spectral.at_wavelengths(
          temporal, plan, getattr(self, f"{prefix}pos_embed_spectral_residual"))
    return full_pos_embed(spatial, temporal)

  def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float,
                      noise: torch.Tensor | None = None, wavelengths=None, fwhm=None):
    """x -> (latent [B, K, D] after `norm`, mask [B, L], ids_restore [B, L])."""
    x = self._tokens(imgs)
    n, _, d = x.shape
    x, mask, ids_restore, ids_keep = self.random_masking(x, mask_ratio, noise)
    pos = self._pos("", wavelengths, fwhm).expand(n, -1, -1)
    x = x + torch.gather(pos, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
    for blk in self.blocks:
      x = blk(x)
    return self.norm(x), mask, ids_restore

  def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor, wavelengths=None,
                      fwhm=None) -> torch.Tensor:
    """latent [B, K, D], ids_restore [B, L] -> predicted tubelets [B, L, t*p*p] (all tokens)."""
    x = self.decoder_embed(latent)
    n, keep, c = x.shape
    x = torch.cat([x, self.mask_token.repeat(n, ids_restore.shape[1] - keep, 1)], dim=1)
    x = torch.gather(x, 1, ids_restore.unsqueeze(-1).expand(-1, -1, c))
    x = x + self._pos("decoder_", wavelengths, fwhm)
    for blk in self.decoder_blocks:
      x = blk(x)
    return self.decoder_pred(self.decoder_norm(x))

  def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor,
                   return_terms: bool = False):
    """Official loss: masked-token MSE + MSE of per-location sums over the spectral groups
    (all positions); `return_terms` gives (loss, loss_mse, loss_spectral)."""
    target = self.patchify(as_volume(imgs, self.num_frames))          # [B, L, P]
    n, length, p = target.shape
    t = length // (self.input_size[1] * self.input_size[2])
    target_sum = target.reshape(n, t, length // t, p).sum(dim=1)      # raw targets
    pred_sum = pred.reshape(n, t, length // t, p).sum(dim=1)
    if self.norm_pix_loss:
      mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
      target = (target - mean) / (var + 1.0e-6) ** 0.5
    loss_mse = (((pred - target) ** 2).mean(dim=-1) * mask).sum() / mask.sum()
    loss_spectral = ((pred_sum - target_sum) ** 2).mean()
    loss = loss_mse + loss_spectral
    return (loss, loss_mse, loss_spectral) if return_terms else loss

  def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.9,
              noise: torch.Tensor | None = None, wavelengths=None, fwhm=None):
    """x -> (loss [], pred [B, L, t*p*p], mask [B, L]); `noise` [B, L] fixes the mask."""
    latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise, wavelengths, fwhm)
    pred = self.forward_decoder(latent, ids_restore, wavelengths, fwhm)
    return self.forward_loss(imgs, pred, mask), pred, mask

  # ------------------------------------------------------------------ features
  def forward_features(self, x: torch.Tensor, layers=None, *, wavelengths=None, fwhm=None,
                       drop_groups=()) -> list[torch.Tensor]:
    """Tokens [B, L, D] after the encoder blocks in `layers`, no masking, in original order.

    layers: 0-based block indices (negative count from the end: -1 = last block); None =
    every block. Raw block outputs (no final norm), as PANGAEA / TerraTorch decoders take
    them; `encode` gives the normed final tokens. `drop_groups`: the tokens of these spectral
    groups are left out (L counts the kept ones).
    """
    tokens = self._tokens(x)
    tokens = tokens + self._pos("", wavelengths, fwhm)
    per_group = self.input_size[1] * self.input_size[2]
    keep = spectral.kept_tokens(tokens.shape[1] // per_group, per_group, tuple(drop_groups))
    if keep is not None:
      tokens = tokens[:, keep.to(tokens.device)]
    return run_blocks(self.blocks, tokens, layers)

  def encode(self, x: torch.Tensor, **bands) -> torch.Tensor:
    """Encoder output [B, L, D] on every token (no masking), after the final `norm`."""
    return self.norm(self.forward_features(x, [-1], **bands)[0])

  def embed(self, x: torch.Tensor, **bands) -> torch.Tensor:
    """Embedding [B, D]: the mean of `encode` over tokens."""
    return self.encode(x, **bands).mean(dim=1)
