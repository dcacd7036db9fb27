"""Inference API: `load(path)` -> a model you can embed and reconstruct with.

    from spectralgpt_jax.inference import load, read_bigearthnet_patch, read_geotiff
    m = load("runs/pretrain")                   # orbax dir, official .pth, .safetensors
    cube, meta = read_bigearthnet_patch(folder)  # float32 digital numbers [12, 120, 120]
    emb = m.embed(cube, bands=meta["bands"])     # [1, D]: resized to the model's size, normalized
    tok = m.features(cubes, bands=...)           # [B, L, D]
    emb = m.embed(cube, compute_dtype="bfloat16")  # bf16 matmuls, f32 accumulation and norms
    out = m.reconstruct(cubes, mask_ratio=0.9)   # loss, input, pred, mask, reconstruction, ...

Cubes are [B, C, H, W] (or one [C, H, W]) numpy arrays; for a model with num_dates = T > 1,
series [B, T, C, H, W] (or one [T, C, H, W]). `bands=` names the input's planes: they are
checked against the model's band list (its manifest) and reordered by name; without it the
input must already be in the model's order.

Defaults, the same as the `embed` CLI's:
* `normalize=True`: the input is raw Sentinel-2 digital numbers (or reflectance with
  units="reflectance") and is normalized with the statistics stored with the weights (manifest
  or checkpoint meta; official files: per-image min-max). Pass `normalize=False` for input that
  is already normalized; raw-looking values then warn (rule in `inference.inputs`).
* `image_size=None`: the input is resized (bicubic, antialiased; `resampling=`) to the model's
  image size, e.g. a 120 px BigEarthNet patch or a 64 px EuroSAT tile to 128; pass an int (a
  multiple of the patch size) to run the model at another size.

Segmenters and change detectors (kind "seg" / "change", runs or dense exports):
`m.dense_logits(x[, x2])` on normalized tiles [B, C, H, W] -> [B, K, H, W];
`m.meta["classes"]`, `m.meta["tile"]` say what the outputs are and how the model was tiled.
Classifiers: `m.class_logits(x)` -> [B, K] (x prepared, e.g. by `m.prepare`).

MAE weights: features = encoder tokens after the final norm, with no masking (token order is
(spectral group, row, col)); embed = their mean. ViT weights: features = tokens after the last
block (no norm, as the official model); embed = the model's pooled, normed vector.
"""

from data_pipelines.normalization import normalize_cube
from data_pipelines.readers import read_bigearthnet_patch, read_geotiff
from spectralgpt_jax.inference.inputs import fit_to_size
from spectralgpt_jax.inference.model import SpectralGPT, load

__all__ = ["SpectralGPT", "load", "normalize_cube", "read_geotiff", "read_bigearthnet_patch",
           "fit_to_size"]
