"""Independent plain-PyTorch twin of the official SpectralGPT architecture (clean room).

Written only from ../shared/spec/SPECTRALGPT.md (§1, §2, §10) and official_state_dict_keys.txt;
no official (GPL-3.0) code was read. Parameter names, shapes and state_dict order equal the
official modules, so a state dict from here loads into the official code and vice versa.

Conventions (spec §1.1-1.2):
  * model input imgs (N, T=12, H, W), unsqueezed to (N, 1, T, H, W);
  * tokens are (t_patch x p x p) cubes, token index = t * (H'W') + h * W' + w;
  * a patch vector is ordered (band-in-group u, row p, col q, channel c), the C-order flatten
    of the Conv3d kernel (kt, kh, kw) for in_chans=1.

Deliberate differences from the official code (all documented in the spec):
  * forward_loss derives the patch dimension instead of hard-coding 192, so the `2tensor`
    variant (t_patch 2, patch dim 128) works;
  * no `print(target_spatial.shape)` on every loss call;
  * constructor defaults are the SpectralGPT+ base_128 config, not the official class defaults
    (224 / 16 / in_chans 3 / ...), which no factory uses; pred_t_dim == num_frames is implied.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

LN_EPS = 1e-6


def _layer_norm(dim: int) -> nn.LayerNorm:
  """LayerNorm with the official eps (partial(nn.LayerNorm, eps=1e-6))."""
  return nn.LayerNorm(dim, eps=LN_EPS)


# --------------------------------------------------------------------------------------------
# Building blocks (official util/video_vit.py, timm Mlp/DropPath)
# --------------------------------------------------------------------------------------------


class DropPath(nn.Module):
  """Per-sample stochastic depth (timm semantics: scale kept samples by 1/keep_prob)."""

  def __init__(self, drop_prob: float = 0.0):
    super().__init__()
    self.drop_prob = float(drop_prob)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    if self.drop_prob == 0.0 or not self.training:
      return x
    keep_prob = 1.0 - self.drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    keep = x.new_empty(shape).bernoulli_(keep_prob)
    return x * keep / keep_prob

  def extra_repr(self) -> str:
    return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
  """fc1 -> exact (erf) GELU -> fc2; (B, N, D) -> (B, N, D)."""

  def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0):
    super().__init__()
    self.fc1 = nn.Linear(in_features, hidden_features)
    self.act = nn.GELU()  # approximate='none'
    self.drop1 = nn.Dropout(drop)
    self.fc2 = nn.Linear(hidden_features, in_features)
    self.drop2 = nn.Dropout(drop)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class PatchEmbed(nn.Module):
  """Conv3d tokeniser: (B, C, T, H, W) -> (B, T', H'W', D), T' = T / t_patch, H' = H / p."""

  def __init__(self, img_size: int = 128, patch_size: int = 8, in_chans: int = 1,
               embed_dim: int = 768, num_frames: int = 12, t_patch_size: int = 3):
    super().__init__()
    assert img_size % patch_size == 0, (img_size, patch_size)
    assert num_frames % t_patch_size == 0, (num_frames, t_patch_size)
    self.img_size = img_size
    self.patch_size = patch_size
    self.in_chans = in_chans
    self.num_frames = num_frames
    self.t_patch_size = t_patch_size
    self.grid_size = img_size // patch_size            # H' = W'
    self.t_grid_size = num_frames // t_patch_size      # T'
    self.input_size = (self.t_grid_size, self.grid_size, self.grid_size)
    self.num_patches = self.t_grid_size * self.grid_size * self.grid_size
    kernel = (t_patch_size, patch_size, patch_size)
    self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    """x (B, C, T, H, W) -> (B, T', H'W', D)."""
    B, C, T, H, W = x.shape
    assert (C, T, H, W) == (self.in_chans, self.num_frames, self.img_size, self.img_size), x.shape
    x = self.proj(x).flatten(3)                        # (B, D, T', H'W')
    return torch.einsum("ncts->ntsc", x)               # (B, T', H'W', D)


class Attention(nn.Module):
  """Global MHSA with separate q/k/v Linears; (B, N, D) -> (B, N, D)."""

  def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, proj_drop: float = 0.0):
    super().__init__()
    assert dim % num_heads == 0, (dim, num_heads)
    self.num_heads = num_heads
    self.head_dim = dim // num_heads
    self.scale = self.head_dim ** -0.5
    self.q = nn.Linear(dim, dim, bias=qkv_bias)
    self.k = nn.Linear(dim, dim, bias=qkv_bias)
    self.v = nn.Linear(dim, dim, bias=qkv_bias)
    self.proj = nn.Linear(dim, dim)
    self.proj_drop = nn.Dropout(proj_drop)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    B, N, C = x.shape

    def heads(t: torch.Tensor) -> torch.Tensor:        # (B, N, C) -> (B, h, N, hd)
      return t.reshape(B, N, self.num_heads, self.head_dim).transpose(1, 2)

    q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
    attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)   # (B, h, N, N)
    x = (attn @ v).transpose(1, 2).reshape(B, N, C)
    return self.proj_drop(self.proj(x))


class Block(nn.Module):
  """Pre-norm transformer block; (B, N, D) -> (B, N, D)."""

  def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
               drop_path: float = 0.0):
    super().__init__()
    self.norm1 = _layer_norm(dim)
    self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
    self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
    self.norm2 = _layer_norm(dim)
    self.mlp = Mlp(dim, int(dim * mlp_ratio))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = x + self.drop_path(self.attn(self.norm1(x)))
    return x + self.drop_path(self.mlp(self.norm2(x)))


def _as_5d(imgs: torch.Tensor) -> torch.Tensor:
  """(N, T, H, W) -> (N, 1, T, H, W) as the official `torch.unsqueeze(x, 1)`; 5-D passes."""
  if imgs.ndim == 4:
    return imgs.unsqueeze(1)
  assert imgs.ndim == 5, imgs.shape
  return imgs


def full_pos_embed(spatial: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
  """Separable pos embed: (1, S, D), (1, T', D) -> (1, T'S, D), pos[t*S+s] = sp[s] + tp[t]."""
  S, T = spatial.shape[1], temporal.shape[1]
  return spatial.repeat(1, T, 1) + torch.repeat_interleave(temporal, S, dim=1)


# --------------------------------------------------------------------------------------------
# Pretraining MAE (official models_mae_spectral.MaskedAutoencoderViT, sep_pos_embed, no cls)
# --------------------------------------------------------------------------------------------


class MaskedAutoencoderViT(nn.Module):
  """SpectralGPT masked autoencoder. forward: imgs (N, 12, H, W) -> (loss, pred (N,L,P), mask (N,L))."""

  def __init__(self, img_size: int = 128, patch_size: int = 8, in_chans: int = 1,
               embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
               decoder_embed_dim: int = 512, decoder_depth: int = 4, decoder_num_heads: int = 16,
               mlp_ratio: float = 4.0, num_frames: int = 12, t_patch_size: int = 3,
               norm_pix_loss: bool = False, qkv_bias: bool = True):
    super().__init__()
    self.norm_pix_loss = norm_pix_loss
    self.patch_size = patch_size
    self.t_patch_size = t_patch_size
    self.in_chans = in_chans
    self.num_frames = num_frames
    pe = PatchEmbed(img_size, patch_size, in_chans, embed_dim, num_frames, t_patch_size)
    self.input_size = pe.input_size                    # (T', H', W')
    T, Hg, Wg = pe.input_size
    S = Hg * Wg
    self.patch_dim = t_patch_size * patch_size * patch_size * in_chans

    # Direct parameters first: this is the official state_dict order.
    self.pos_embed_spatial = nn.Parameter(torch.zeros(1, S, embed_dim))
    self.pos_embed_temporal = nn.Parameter(torch.zeros(1, T, embed_dim))
    self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
    self.decoder_pos_embed_spatial = nn.Parameter(torch.zeros(1, S, decoder_embed_dim))
    self.decoder_pos_embed_temporal = nn.Parameter(torch.zeros(1, T, decoder_embed_dim))

    self.patch_embed = pe
    self.blocks = nn.ModuleList([
        Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias) for _ in range(depth)])
    self.norm = _layer_norm(embed_dim)

    self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
    self.decoder_blocks = nn.ModuleList([
        Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=qkv_bias)
        for _ in range(decoder_depth)])
    self.decoder_norm = _layer_norm(decoder_embed_dim)
    self.decoder_pred = nn.Linear(decoder_embed_dim, self.patch_dim)

    self.initialize_weights()

  # ---- init (spec §1.2 "Initialisation") ----
  def initialize_weights(self) -> None:
    """trunc_normal(0.02) pos embeds, xavier conv weight (D, 192 view), normal(0.02) mask token,
    xavier Linear + zero bias, LN 1/0. The Conv3d bias keeps the PyTorch default."""
    for p in (self.pos_embed_spatial, self.pos_embed_temporal,
              self.decoder_pos_embed_spatial, self.decoder_pos_embed_temporal):
      nn.init.trunc_normal_(p, std=0.02)
    w = self.patch_embed.proj.weight.data
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    nn.init.normal_(self.mask_token, std=0.02)
    self.apply(_init_linear_ln)

  # ---- (un)patchify ----
  def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
    """imgs (N, C, T, H, W) -> (N, T'H'W', u*p*q*C); inner order (u, p, q, c)."""
    N, C, T, H, W = imgs.shape
    p, u = self.patch_size, self.t_patch_size
    t, h, w = T // u, H // p, W // p
    x = imgs.reshape(N, C, t, u, h, p, w, p)
    x = torch.einsum("nctuhpwq->nthwupqc", x)
    return x.reshape(N, t * h * w, u * p * p * C)

  def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
    """(N, T'H'W', u*p*q*C) -> imgs (N, C, T, H, W); exact inverse of patchify."""
    N = x.shape[0]
    t, h, w = self.input_size
    p, u, C = self.patch_size, self.t_patch_size, self.in_chans
    x = x.reshape(N, t, h, w, u, p, p, C)
    x = torch.einsum("nthwupqc->nctuhpwq", x)
    return x.reshape(N, C, t * u, h * p, w * p)

  # ---- masking ----
  @staticmethod
  def random_masking(x: torch.Tensor, mask_ratio: float, noise: Optional[torch.Tensor] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample shuffle. x (N, L, D) -> x_masked (N, K, D), mask (N, L) 1=removed,
    ids_restore (N, L), ids_keep (N, K); K = int(L * (1 - mask_ratio)) (Python float)."""
    N, L, D = x.shape
    len_keep = int(L * (1 - mask_ratio))
    if noise is None:
      noise = torch.rand(N, L, device=x.device)
    ids_shuffle = torch.argsort(noise, dim=1)          # ascending: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, D))
    mask = torch.ones(N, L, device=x.device, dtype=x.dtype)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return x_masked, mask, ids_restore, ids_keep

  # ---- encoder / decoder ----
  def forward_encoder(self, imgs: torch.Tensor, mask_ratio: float,
                      noise: Optional[torch.Tensor] = None
                      ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """imgs (N, T, H, W) -> latent (N, K, D) after `norm`, mask (N, L), ids_restore (N, L)."""
    x = self.patch_embed(_as_5d(imgs))                 # (N, T', S, D)
    N, T, S, D = x.shape
    x = x.reshape(N, T * S, D)
    x, mask, ids_restore, ids_keep = self.random_masking(x, mask_ratio, noise)
    pos = full_pos_embed(self.pos_embed_spatial, self.pos_embed_temporal).expand(N, -1, -1)
    x = x + torch.gather(pos, 1, ids_keep.unsqueeze(-1).expand(-1, -1, D))
    for blk in self.blocks:
      x = blk(x)
    return self.norm(x), mask, ids_restore

  def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
    """latent (N, K, D), ids_restore (N, L) -> pred (N, L, t*p*p*C) for all tokens."""
    x = self.decoder_embed(latent)                     # (N, K, Dd)
    N, K, C = x.shape
    L = ids_restore.shape[1]
    mask_tokens = self.mask_token.repeat(N, L - K, 1)
    x = torch.cat([x, mask_tokens], dim=1)
    x = torch.gather(x, 1, ids_restore.unsqueeze(-1).expand(-1, -1, C))  # unshuffle
    x = x + full_pos_embed(self.decoder_pos_embed_spatial, self.decoder_pos_embed_temporal)
    for blk in self.decoder_blocks:
      x = blk(x)
    return self.decoder_pred(self.decoder_norm(x))

  # ---- loss (spec §1.3) ----
  def forward_loss(self, imgs: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor,
                   return_terms: bool = False):
    """imgs (N, T, H, W), pred (N, L, P), mask (N, L) -> loss, or (loss, loss1, loss3).

    loss1: masked-token MSE (mean over P, averaged over removed tokens);
    loss3: MSE of spectral-group sums, over ALL spatial positions; loss = loss1 + loss3.
    norm_pix_loss normalises target1 only, after target_spatial was taken from raw targets.
    """
    imgs = _as_5d(imgs)
    # Official: index_select(imgs, 2, linspace(0, T-1, pred_t_dim).long()); identity for
    # pred_t_dim == num_frames == 12 (all shipped variants).
    T = imgs.shape[2]
    sel = torch.linspace(0, T - 1, self.num_frames).long().to(imgs.device)
    imgs = torch.index_select(imgs, 2, sel)
    target1 = self.patchify(imgs)                      # (N, L, P)
    N, L, P = target1.shape
    t = self.input_size[0]
    hw = L // t
    target_spatial = target1.reshape(N, t, hw, P).sum(dim=1)   # (N, hw, P)
    pred_spatial = pred.reshape(N, t, hw, P).sum(dim=1)
    if self.norm_pix_loss:
      mean = target1.mean(dim=-1, keepdim=True)
      var = target1.var(dim=-1, keepdim=True)          # torch default: unbiased (ddof=1)
      target1 = (target1 - mean) / (var + 1.0e-6) ** 0.5
    loss1 = ((pred - target1) ** 2).mean(dim=-1)       # (N, L)
    loss1 = (loss1 * mask).sum() / mask.sum()
    loss3 = ((pred_spatial - target_spatial) ** 2).mean(dim=-1).mean()
    loss = loss1 + loss3
    if return_terms:
      return loss, loss1, loss3
    return loss

  def forward(self, imgs: torch.Tensor, mask_ratio: float = 0.9,
              noise: Optional[torch.Tensor] = None
              ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """imgs (N, 12, H, W) -> loss (), pred (N, L, P), mask (N, L).
    loss1/loss3 of the last call are kept in `self.last_loss_terms`."""
    latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
    pred = self.forward_decoder(latent, ids_restore)
    loss, loss1, loss3 = self.forward_loss(imgs, pred, mask, return_terms=True)
    self.last_loss_terms: Dict[str, torch.Tensor] = {"loss1": loss1, "loss3": loss3}
    return loss, pred, mask


def _init_linear_ln(m: nn.Module) -> None:
  """MAE `_init_weights`: xavier_uniform Linear weight, zero bias; LayerNorm 1 / 0."""
  if isinstance(m, nn.Linear):
    nn.init.xavier_uniform_(m.weight)
    if m.bias is not None:
      nn.init.zeros_(m.bias)
  elif isinstance(m, nn.LayerNorm):
    nn.init.ones_(m.weight)
    nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------------------------
# Fine-tuning classifier (official models_vit_tensor.VisionTransformer, sep_pos_embed=False)
# --------------------------------------------------------------------------------------------


class VisionTransformer(nn.Module):
  """Classifier. forward: x (N, 12, H, W) -> logits (N, num_classes)."""

  def __init__(self, img_size: int = 128, patch_size: int = 8, in_chans: int = 1,
               num_classes: int = 10, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
               mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path_rate: float = 0.2,
               dropout: float = 0.0, num_frames: int = 12, t_patch_size: int = 3,
               pool_skip_first: bool = True):
    super().__init__()
    self.pool_skip_first = pool_skip_first
    pe = PatchEmbed(img_size, patch_size, in_chans, embed_dim, num_frames, t_patch_size)
    self.input_size = pe.input_size
    # Zero init, never re-initialised (and never loaded from the MAE checkpoint).
    self.pos_embed = nn.Parameter(torch.zeros(1, pe.num_patches, embed_dim))
    self.patch_embed = pe
    dpr = [float(v) for v in torch.linspace(0, drop_path_rate, depth, device="cpu")]
    self.blocks = nn.ModuleList([
        Block(embed_dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=dpr[i])
        for i in range(depth)])
    self.norm = _layer_norm(embed_dim)                 # applied to the pooled vector (fc_norm)
    self.dropout = nn.Dropout(dropout)
    self.head = nn.Linear(embed_dim, num_classes)
    nn.init.normal_(self.head.weight, std=0.02)        # bias keeps PyTorch default init

  def forward_features(self, x: torch.Tensor) -> torch.Tensor:
    """x (N, T, H, W) -> tokens (N, T'H'W', D) after the blocks (no final token norm)."""
    x = self.patch_embed(_as_5d(x))
    N, T, S, D = x.shape
    x = x.reshape(N, T * S, D) + self.pos_embed
    for blk in self.blocks:
      x = blk(x)
    return x

  def pool(self, x: torch.Tensor) -> torch.Tensor:
    """tokens (N, L, D) -> (N, D): mean over tokens 1..L-1 (official quirk) or all tokens."""
    return x[:, 1:, :].mean(dim=1) if self.pool_skip_first else x.mean(dim=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.pool(self.forward_features(x))
    return self.head(self.dropout(self.norm(x)))


# --------------------------------------------------------------------------------------------
# Factories (official names and configs, spec §1.2 / §1.4 tables)
# --------------------------------------------------------------------------------------------

_MAE_CONFIGS: Dict[str, dict] = {
    "mae_vit_base_patch8_96": dict(img_size=96, t_patch_size=3, embed_dim=768, depth=12, num_heads=12),
    "mae_vit_base_patch8_128": dict(img_size=128, t_patch_size=3, embed_dim=768, depth=12, num_heads=12),
    "mae_vit_base_patch8_2tensor_128": dict(img_size=128, t_patch_size=2, embed_dim=768, depth=12,
                                            num_heads=12),
    "mae_vit_large_patch8_96": dict(img_size=96, t_patch_size=3, embed_dim=1024, depth=24, num_heads=16),
    "mae_vit_large_patch8_128": dict(img_size=128, t_patch_size=3, embed_dim=1024, depth=24,
                                     num_heads=16),
    "mae_vit_huge_patch8_96": dict(img_size=96, t_patch_size=3, embed_dim=1280, depth=32, num_heads=16),
    "mae_vit_huge_patch8_128": dict(img_size=128, t_patch_size=3, embed_dim=1280, depth=32,
                                    num_heads=16),
    # Tiny test variant (not official).
    "mae_vit_tiny_patch8_32": dict(img_size=32, t_patch_size=3, embed_dim=64, depth=2, num_heads=4,
                                   decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=4),
}

_VIT_CONFIGS: Dict[str, dict] = {
    "vit_base_patch8_128": dict(img_size=128, patch_size=8, t_patch_size=3, embed_dim=768, depth=12,
                                num_heads=12),
    "vit_base_patch8": dict(img_size=96, patch_size=8, t_patch_size=3, embed_dim=768, depth=12,
                            num_heads=12),
    "vit_base_patch16": dict(img_size=96, patch_size=16, t_patch_size=3, embed_dim=768, depth=12,
                             num_heads=12),
    "vit_base_patch16_128": dict(img_size=128, patch_size=16, t_patch_size=3, embed_dim=768, depth=12,
                                 num_heads=12),
    "vit_base_patch8_channel10": dict(img_size=128, patch_size=8, t_patch_size=2, num_frames=10,
                                      embed_dim=768, depth=12, num_heads=12),
    "vit_base_patch8_120": dict(img_size=120, patch_size=8, t_patch_size=12, embed_dim=768, depth=12,
                                num_heads=12),
    "vit_large_patch8_128": dict(img_size=128, patch_size=8, t_patch_size=3, embed_dim=1024, depth=24,
                                 num_heads=16),
    "vit_huge_patch8_128": dict(img_size=128, patch_size=8, t_patch_size=12, embed_dim=1280, depth=32,
                                num_heads=16),
    # Tiny test variant (not official): same encoder as mae_vit_tiny_patch8_32.
    "vit_tiny_patch8_32": dict(img_size=32, patch_size=8, t_patch_size=3, embed_dim=64, depth=2,
                               num_heads=4),
}

MAE_FACTORIES = tuple(_MAE_CONFIGS)
VIT_FACTORIES = tuple(_VIT_CONFIGS)


def _make_mae(name: str):
  def factory(**kwargs) -> MaskedAutoencoderViT:
    kwargs.pop("mask_ratio", None)  # official factories accept and ignore it
    cfg = dict(patch_size=8, in_chans=1, mlp_ratio=4.0, num_frames=12)
    cfg.update(_MAE_CONFIGS[name])
    cfg.update(kwargs)
    return MaskedAutoencoderViT(**cfg)
  factory.__name__ = name
  factory.__doc__ = f"{name}: {_MAE_CONFIGS[name]} (kwargs override)."
  return factory


def _make_vit(name: str):
  def factory(**kwargs) -> VisionTransformer:
    cfg = dict(in_chans=1, mlp_ratio=4.0, num_frames=12)
    cfg.update(_VIT_CONFIGS[name])
    cfg.update(kwargs)
    return VisionTransformer(**cfg)
  factory.__name__ = name
  factory.__doc__ = f"{name}: {_VIT_CONFIGS[name]} (kwargs override, e.g. num_classes)."
  return factory


mae_vit_base_patch8_96 = _make_mae("mae_vit_base_patch8_96")
mae_vit_base_patch8_128 = _make_mae("mae_vit_base_patch8_128")
mae_vit_base_patch8_2tensor_128 = _make_mae("mae_vit_base_patch8_2tensor_128")
mae_vit_large_patch8_96 = _make_mae("mae_vit_large_patch8_96")
mae_vit_large_patch8_128 = _make_mae("mae_vit_large_patch8_128")
mae_vit_huge_patch8_96 = _make_mae("mae_vit_huge_patch8_96")
mae_vit_huge_patch8_128 = _make_mae("mae_vit_huge_patch8_128")
mae_vit_tiny_patch8_32 = _make_mae("mae_vit_tiny_patch8_32")

vit_base_patch8_128 = _make_vit("vit_base_patch8_128")
vit_base_patch8 = _make_vit("vit_base_patch8")
vit_base_patch16 = _make_vit("vit_base_patch16")
vit_base_patch16_128 = _make_vit("vit_base_patch16_128")
vit_base_patch8_channel10 = _make_vit("vit_base_patch8_channel10")
vit_base_patch8_120 = _make_vit("vit_base_patch8_120")
vit_large_patch8_128 = _make_vit("vit_large_patch8_128")
vit_huge_patch8_128 = _make_vit("vit_huge_patch8_128")
vit_tiny_patch8_32 = _make_vit("vit_tiny_patch8_32")

FACTORIES = {name: globals()[name] for name in MAE_FACTORIES + VIT_FACTORIES}


# --------------------------------------------------------------------------------------------
# Independent numpy reference of the loss (explicit loops, no reshape tricks)
# --------------------------------------------------------------------------------------------


def reference_loss_numpy(imgs, pred, mask, t_patch: int, patch: int,
                         norm_pix_loss: bool = False) -> Tuple[float, float, float]:
  """Official multi-target loss in float64 numpy -> (loss, loss1, loss3).

  imgs (N, T, H, W) or (N, 1, T, H, W); pred (N, L, t_patch*patch*patch); mask (N, L), 1=removed.
  Tokens are cut by explicit loops: token (t, h, w) -> index t*H'W' + h*W' + w, its vector is the
  C-order flatten of imgs[3t:3t+3, 8h:8h+8, 8w:8w+8] (band, row, col).
  """
  imgs = np.asarray(imgs, dtype=np.float64)
  if imgs.ndim == 5:
    assert imgs.shape[1] == 1, imgs.shape
    imgs = imgs[:, 0]
  pred = np.asarray(pred, dtype=np.float64)
  mask = np.asarray(mask, dtype=np.float64)
  N, T, H, W = imgs.shape
  tg, hg, wg = T // t_patch, H // patch, W // patch
  P = t_patch * patch * patch
  L = tg * hg * wg
  assert pred.shape == (N, L, P), (pred.shape, (N, L, P))
  assert mask.shape == (N, L), mask.shape

  target = np.zeros((N, L, P))
  for n in range(N):
    for t in range(tg):
      for h in range(hg):
        for w in range(wg):
          cube = imgs[n, t * t_patch:(t + 1) * t_patch, h * patch:(h + 1) * patch,
                      w * patch:(w + 1) * patch]
          target[n, t * hg * wg + h * wg + w] = cube.reshape(-1)

  # Spectral-group sums per spatial position, from the raw (un-normalised) target.
  S = hg * wg
  tgt_sp = np.zeros((N, S, P))
  pred_sp = np.zeros((N, S, P))
  for t in range(tg):
    tgt_sp += target[:, t * S:(t + 1) * S]
    pred_sp += pred[:, t * S:(t + 1) * S]

  if norm_pix_loss:
    mu = target.mean(axis=-1, keepdims=True)
    var = target.var(axis=-1, ddof=1, keepdims=True)
    target = (target - mu) / np.sqrt(var + 1e-6)

  per_tok = np.einsum("nlp,nlp->nl", pred - target, pred - target) / P
  loss1 = float((per_tok * mask).sum() / mask.sum())
  per_pos = np.einsum("nsp,nsp->ns", pred_sp - tgt_sp, pred_sp - tgt_sp) / P
  loss3 = float(per_pos.mean())
  return loss1 + loss3, loss1, loss3


def count_params(model: nn.Module) -> int:
  """Total number of parameter elements (works on meta-device models)."""
  return sum(p.numel() for p in model.parameters())


def encoder_param_count(model: MaskedAutoencoderViT) -> int:
  """Parameters excluding decoder_* and mask_token (the spec's 'encoder' count)."""
  return sum(p.numel() for k, p in model.named_parameters()
             if not (k.startswith("decoder_") or k == "mask_token"))


__all__ = [
    "DropPath", "Mlp", "PatchEmbed", "Attention", "Block", "MaskedAutoencoderViT",
    "VisionTransformer", "full_pos_embed", "reference_loss_numpy", "count_params",
    "encoder_param_count", "FACTORIES", "MAE_FACTORIES", "VIT_FACTORIES", *FACTORIES.keys(),
]
