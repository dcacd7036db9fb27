"""Building blocks of the official SpectralGPT modules in plain PyTorch (clean room, from the
official model's published facts, section 1.1 of the spec): Conv3d tubelet embedding,
separate-q/k/v attention, pre-norm block.

Shapes: tokens are [B, N, D]; the tubelet embedding takes [B, 1, T, H, W] (T bands) and gives
[B, T', H'W', D], T' = T / t_patch, H' = H / p; token index t*(H'W') + h*W' + w.
"""

from __future__ import annotations

import torch
from torch import nn

LN_EPS = 1e-6  # every official factory passes norm_layer=partial(nn.LayerNorm, eps=1e-6)


def layer_norm(dim: int) -> nn.LayerNorm:
  return nn.LayerNorm(dim, eps=LN_EPS)


class DropPath(nn.Module):
  """Per-sample stochastic depth (kept samples scaled by 1 / keep_prob), training only."""

  def __init__(self, drop_prob: float = 0.0):
    super().__init__()
    self.drop_prob = float(drop_prob)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    if self.drop_prob == 0.0 or not self.training:
      return x
    keep_prob = 1.0 - self.drop_prob
    keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
    return x * keep / keep_prob

  def extra_repr(self) -> str:
    return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
  """fc1 -> exact (erf) GELU -> fc2: [B, N, D] -> [B, N, D]."""

  def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0):
    super().__init__()
    self.fc1 = nn.Linear(in_features, hidden_features)
    self.act = nn.GELU()
    self.drop1 = nn.Dropout(drop)
    self.fc2 = nn.Linear(hidden_features, in_features)
    self.drop2 = nn.Dropout(drop)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class PatchEmbed(nn.Module):
  """Conv3d tokeniser: [B, C, T, H, W] -> [B, T', H'W', D] (C = in_chans = 1)."""

  def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int,
               num_frames: int, t_patch_size: int):
    super().__init__()
    if img_size % patch_size or num_frames % t_patch_size:
      raise ValueError(f"img_size {img_size} must be a multiple of patch_size {patch_size} and "
                       f"num_frames {num_frames} of t_patch_size {t_patch_size}")
    self.img_size, self.patch_size, self.in_chans = img_size, patch_size, in_chans
    self.num_frames, self.t_patch_size = num_frames, t_patch_size
    side = img_size // patch_size
    self.input_size = (num_frames // t_patch_size, side, side)   # (T', H', W')
    self.num_patches = self.input_size[0] * side * side
    kernel = (t_patch_size, patch_size, patch_size)
    self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

  def forward(self, x: torch.Tensor, any_bands: bool = False) -> torch.Tensor:
    """`any_bands`: accept any band count that is a multiple of t_patch_size (a model with
    wavelength-aware spectral positions); otherwise exactly num_frames."""
    frames = x.shape[2] if any_bands and x.shape[2] % self.t_patch_size == 0 else self.num_frames
    want = (self.in_chans, frames, self.img_size, self.img_size)
    if tuple(x.shape[1:]) != want:
      raise ValueError(f"input {tuple(x.shape)}: this model takes [B, {self.num_frames}, "
                       f"{self.img_size}, {self.img_size}] (bands, then pixels); resize or "
                       "select bands first")
    x = self.proj(x).flatten(3)                        # [B, D, T', H'W']
    return torch.einsum("ncts->ntsc", x)               # [B, T', H'W', D]


class Attention(nn.Module):
  """Global multi-head self-attention with separate q/k/v Linears: [B, N, D] -> [B, N, D]."""

  def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_drop: float = 0.0):
    super().__init__()
    if dim % num_heads:
      raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
    self.num_heads, self.head_dim = num_heads, dim // num_heads
    self.scale = self.head_dim ** -0.5
    self.q = nn.Linear(dim, dim, bias=qkv_bias)
    self.k = nn.Linear(dim, dim, bias=qkv_bias)
    self.v = nn.Linear(dim, dim, bias=qkv_bias)
    self.proj = nn.Linear(dim, dim)
    self.proj_drop = nn.Dropout(proj_drop)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    b, n, c = x.shape
    heads = lambda t: t.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
    q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
    attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)   # [B, h, N, N]
    x = (attn @ v).transpose(1, 2).reshape(b, n, c)
    return self.proj_drop(self.proj(x))


class Block(nn.Module):
  """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

  def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
               drop_path: float = 0.0):
    super().__init__()
    self.norm1 = layer_norm(dim)
    self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
    self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
    self.norm2 = layer_norm(dim)
    self.mlp = Mlp(dim, int(dim * mlp_ratio))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = x + self.drop_path(self.attn(self.norm1(x)))
    return x + self.drop_path(self.mlp(self.norm2(x)))


def full_pos_embed(spatial: torch.Tensor, temporal: torch.Tensor) -> torch.Tensor:
  """Separable tables [1, S, D], [1, T', D] -> [1, T'S, D]: row t*S + s = spatial[s] + temporal[t]."""
  s, t = spatial.shape[1], temporal.shape[1]
  return spatial.repeat(1, t, 1) + torch.repeat_interleave(temporal, s, dim=1)


def as_volume(x: torch.Tensor, num_frames: int) -> torch.Tensor:
  """Model input -> [B, 1, T, H, W] as the official `unsqueeze(x, 1)`.

  Accepts [B, T, H, W], a series [B, dates, bands, H, W] with dates * bands = T (folded into T
  bands, date-major, as an export of a time-series model expects), or [B, 1, T, H, W].
  """
  if x.ndim == 4:
    return x.unsqueeze(1)
  if x.ndim == 5 and x.shape[1] * x.shape[2] == num_frames:
    return x.reshape(x.shape[0], 1, num_frames, *x.shape[3:])
  raise ValueError(f"input {tuple(x.shape)}: expected [B, {num_frames}, H, W] or a series "
                   f"[B, dates, bands, H, W] with dates x bands = {num_frames}")


def check_layers(layers, depth: int) -> list[int]:
  """Block indices (0-based; negative count from the end, -1 = last; None = every block)."""
  if layers is None:
    return list(range(depth))
  out = []
  if not list(layers):
    raise ValueError("layers is empty; pass block indices or None for every block")
  for i in layers:
    if not -depth <= int(i) < depth:
      raise ValueError(f"layers {list(layers)}: index {i} out of range for {depth} blocks")
    out.append(int(i) % depth)
  return out


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, layers) -> list[torch.Tensor]:
  """Runs `blocks` on x [B, L, D]; the outputs of the blocks in `layers` (in that order)."""
  want = check_layers(layers, len(blocks))
  outs = {}
  for i, blk in enumerate(blocks[:max(want) + 1]):
    x = blk(x)
    outs[i] = x
  return [outs[i] for i in want]


def init_linear_and_norm(m: nn.Module) -> None:
  """MAE init: xavier-uniform Linear weight, zero bias; LayerNorm weight 1, bias 0."""
  if isinstance(m, nn.Linear):
    nn.init.xavier_uniform_(m.weight)
    if m.bias is not None:
      nn.init.zeros_(m.bias)
  elif isinstance(m, nn.LayerNorm):
    nn.init.ones_(m.weight)
    nn.init.zeros_(m.bias)
