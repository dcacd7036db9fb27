"""The SpectralGPT fine-tuning classifier in PyTorch, in the official state_dict layout
(`models_vit_tensor.VisionTransformer`: one `pos_embed` table, `norm` after pooling, `head`).

  logits = model(x)                                    [B, num_classes]
  model.forward_features(x, layers=[3, 5, 7, 11])      per-block tokens [B, L, D]
  model.encode(x) / model.embed(x)                     last block's tokens / pooled, normed [B, D]
"""

from __future__ import annotations

import torch
from torch import nn

from spectralgpt_jax.torch.layers import Block, PatchEmbed, as_volume, layer_norm, run_blocks

POOLS = ("mean", "official_skip_first")


class VisionTransformer(nn.Module):
  """Classifier: tubelets + pos_embed -> blocks -> pool -> norm -> dropout -> head.

  pool: "mean" over all tokens (default, as our JAX ViT), or "official_skip_first": the
  official mean over tokens 1..L-1 (a leftover of cls-token code; there is no cls token).
  Official-fine-tuned weights (and our exports of a ViT trained with that pooling) need it;
  `from_pretrained` sets it from the manifest. The official `pos_embed` starts at zeros.
  """

  def __init__(self, img_size: int = 128, patch_size: int = 8, in_chans: int = 1,
               num_classes: int = 10, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
               mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path_rate: float = 0.2,
               dropout: float = 0.0, num_frames: int = 12, t_patch_size: int = 3,
               pool: str = "mean", spectral_positions: str = "table"):
    super().__init__()
    if spectral_positions != "table":
      raise ValueError(f"spectral_positions={spectral_positions!r}: this classifier has one "
                       "pos_embed table over the Sentinel-2 token grid; wavelength positions "
                       "are available on MaskedAutoencoderViT")
    if pool not in POOLS:
      raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    self.pool_mode, self.num_frames = pool, num_frames
    pe = PatchEmbed(img_size, patch_size, in_chans, embed_dim, num_frames, t_patch_size)
    self.input_size = pe.input_size
    self.pos_embed = nn.Parameter(torch.zeros(1, pe.num_patches, embed_dim))
    self.patch_embed = pe
    rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
    self.blocks = nn.ModuleList(
        [Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_path=r) for r in rates])
    self.norm = layer_norm(embed_dim)                  # on the pooled vector (fc_norm)
    self.dropout = nn.Dropout(dropout)
    self.head = nn.Linear(embed_dim, num_classes)
    nn.init.normal_(self.head.weight, std=0.02)        # bias keeps the PyTorch default

  def forward_features(self, x: torch.Tensor, layers=None) -> list[torch.Tensor]:
    """Tokens [B, L, D] after the blocks in `layers` (0-based, -1 = last; None = every block)."""
    x = self.patch_embed(as_volume(x, self.num_frames))
    n, t, s, d = x.shape
    return run_blocks(self.blocks, x.reshape(n, t * s, d) + self.pos_embed, layers)

  def encode(self, x: torch.Tensor) -> torch.Tensor:
    """The last block's tokens [B, L, D] (the official model has no final token norm)."""
    return self.forward_features(x, [-1])[0]

  def pool(self, tokens: torch.Tensor) -> torch.Tensor:
    """[B, L, D] -> [B, D] by `pool_mode`."""
    return tokens[:, 1:].mean(dim=1) if self.pool_mode == "official_skip_first" else \
        tokens.mean(dim=1)

  def embed(self, x: torch.Tensor) -> torch.Tensor:
    """The pooled, normed vector [B, D] the head reads."""
    return self.norm(self.pool(self.encode(x)))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.head(self.dropout(self.embed(x)))
