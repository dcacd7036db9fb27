"""Analytic model FLOPs (matmuls only, 2 per multiply-add), for MFU and benchmarks.

Training counts 3x the forward (backward = 2x forward), the usual MFU convention; elementwise
work (norms, GELU, softmax) is not counted.
"""

from __future__ import annotations

from spectralgpt_jax.models.masking import num_kept
from spectralgpt_jax.models.variants import ModelSpec


def _block_flops(tokens: int, dim: int, mlp_ratio: float) -> float:
  """One transformer block on one sequence of `tokens` tokens."""
  linear = 2 * tokens * (4 * dim * dim + 2 * dim * int(dim * mlp_ratio))  # q, k, v, proj, fc1, fc2
  attention = 2 * 2 * tokens * tokens * dim  # q k^T and attn @ v
  return linear + attention


def mae_forward_flops(spec: ModelSpec, mask_ratio: float) -> float:
  """Forward FLOPs of one example through the MAE (encoder on kept tokens, decoder on all)."""
  length = spec.num_tokens
  keep = num_kept(length, mask_ratio)
  d, dd = spec.embed_dim, spec.decoder_embed_dim
  flops = 2 * length * spec.patch_dim * d  # patch embedding (computed for every token)
  flops += spec.depth * _block_flops(keep, d, spec.mlp_ratio)
  flops += 2 * keep * d * dd  # decoder_embed
  flops += spec.decoder_depth * _block_flops(length, dd, spec.mlp_ratio)
  flops += 2 * length * dd * spec.patch_dim  # decoder_pred
  return float(flops)


def vit_forward_flops(spec: ModelSpec) -> float:
  """Forward FLOPs of one example through the classifier (every token, then the head)."""
  length, d = spec.num_tokens, spec.embed_dim
  flops = 2 * length * spec.patch_dim * d + spec.depth * _block_flops(length, d, spec.mlp_ratio)
  return float(flops + 2 * d * spec.num_classes)


def mae_train_flops(spec: ModelSpec, batch: int, mask_ratio: float) -> float:
  """FLOPs of one training step (forward + backward) on `batch` examples."""
  return 3.0 * batch * mae_forward_flops(spec, mask_ratio)
