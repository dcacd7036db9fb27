"""Inference API: `load(path)` -> a model you can embed and reconstruct with.

    from spectralgpt_jax.inference import load
    m = load("runs/pretrain")                  # orbax dir, official .pth, .safetensors
    emb = m.embed(cubes_dn, bands=m.bands, normalize=True)     # [B, D]
    tok = m.features(cubes, bands=...)                          # [B, L, D]
    emb = m.embed(cubes, compute_dtype="bfloat16")  # bf16 matmuls, f32 accumulation and norms
    out = m.reconstruct(cubes, mask_ratio=0.9)                  # loss, pred, mask, ...

Cubes are [B, C, H, W] (or one [C, H, W]) numpy arrays; for a model with num_dates = T > 1,
series [B, T, C, H, W] (or one [T, C, H, W]). `bands=` names the input's planes:
they are checked against the model's band list (its manifest) and reordered by name; without
it the input must already be in the model's order. `normalize=True` applies the stored
normalization (data_pipelines.normalization: minmax, zscore, sentinel_clip) to raw
Sentinel-2 digital numbers (or reflectance with units="reflectance"); leave it False for
inputs that are already normalized.

MAE weights: features = encoder tokens after the final norm, with no masking (token order is
(spectral group, row, col)); embed = their mean. ViT weights: features = tokens after the last
block (no norm, as the official model); embed = the model's pooled, normed vector.
"""

from data_pipelines.normalization import normalize_cube
from spectralgpt_jax.inference.model import SpectralGPT, load

__all__ = ["SpectralGPT", "load", "normalize_cube"]
