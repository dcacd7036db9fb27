"""`type="change_probe"`: OSCD change detection from a frozen encoder, for any band input.

A frozen-feature protocol (the encoder is not trained, so every band subset and spectral mode
of band_input.py can be compared on the same weights, including wavelength positions that the
fine-tuned change model does not take):
  1. Cities are read whole (data_pipelines.oscd.load_city, the 12 SpectralGPT bands), each date
     min-max normalised per band over the whole image.
  2. Training: `crops_per_city` random `image_size` crops per training city and date pair
     (positions drawn with numpy default_rng(ctx.seed): the seed changes the training sample).
     Test: each test city cut into `image_size` tiles at stride `image_size` (the last row and
     column aligned to the border; overlaps keep the later tile).
  3. Per token position: the encoder tokens of both dates (band_input.apply), |f1 - f2|
     averaged over the spectral groups the input has -> [D] per patch.
  4. Closed-form ridge (linear.ridge_path, strength `l2`) from that to the change fraction of
     the patch's pixels; the decision threshold is the one with the best F1 on the training
     patches' pixels (nothing is chosen on the test cities).
  5. Each test pixel takes its patch's decision; F1, IoU, precision and recall of the change
     class over all test pixels pooled.
Fields: root (dataset in its published layout), train_cities, test_cities (comma lists),
image_size (pixels, a multiple of the patch), crops_per_city, l2, batch_size, bands,
spectral_mode (band_input.py). Outputs: metrics.json in ctx.workdir (no per-example
predictions: two test cities are too few for an interval).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from data_pipelines import normalization, oscd, schema
from spectralgpt_jax.evaluation import band_input as band_input_lib
from spectralgpt_jax.evaluation import dense_metrics
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.features import load_encoder
from spectralgpt_jax.evaluation.linear import ridge_path
from spectralgpt_jax.evaluation.registry import register
from spectralgpt_jax.inference.model import encoder_tokens

THRESHOLDS = np.linspace(0.02, 0.98, 49)


def _cities(text: str) -> list[str]:
  return [c.strip() for c in str(text).split(",") if c.strip()]


def _load(root: str, city: str) -> dict[str, np.ndarray]:
  rec = oscd.load_city(root, city, bands=schema.SPECTRALGPT_BANDS)
  return {"a": normalization.minmax(rec["cube"]), "b": normalization.minmax(rec["cube2"]),
          "mask": np.asarray(rec["mask"], np.int32)}


def crop_corners(shape: tuple[int, int], size: int, count: int,
                 rng: np.random.Generator) -> list[tuple[int, int]]:
  """`count` random top-left corners of size x size crops inside an [H, W] image."""
  h, w = shape
  if h < size or w < size:
    raise ValueError(f"image {h}x{w} is smaller than the crop size {size}")
  return [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1)))
          for _ in range(count)]


def tile_corners(shape: tuple[int, int], size: int) -> list[tuple[int, int]]:
  """Top-left corners of tiles at stride `size` covering [H, W] (last ones at the border)."""
  h, w = shape
  if h < size or w < size:
    raise ValueError(f"image {h}x{w} is smaller than the tile size {size}")
  rows = sorted({*range(0, h - size + 1, size), h - size})
  cols = sorted({*range(0, w - size + 1, size), w - size})
  return [(r, c) for r in rows for c in cols]


def best_threshold(scores: np.ndarray, fractions: np.ndarray, pixels: int) -> float:
  """The threshold on patch scores with the best change-class F1 over the patches' pixels
  (each patch counts `pixels` pixels, `fractions` of them changed)."""
  best, best_f1 = float(THRESHOLDS[0]), -1.0
  changed = fractions * pixels
  for t in THRESHOLDS:
    pred = scores >= t
    tp = changed[pred].sum()
    fp = (pixels - changed)[pred].sum()
    fn = changed[~pred].sum()
    f1 = 2 * tp / max(2 * tp + fp + fn, 1e-12)
    if f1 > best_f1:
      best, best_f1 = float(t), f1
  return best


@register("change_probe")
class ChangeProbeEvaluator:
  """Ridge change probe on frozen encoder token differences (see module docstring)."""

  def __init__(self, *, ctx: EvalContext, root: str, train_cities: str, test_cities: str,
               image_size: int = 64, crops_per_city: int = 16, l2: float = 1e-2,
               batch_size: int = 16, bands: str = "", spectral_mode: str = "s2"):
    self.ctx, self.root, self.size = ctx, str(root), int(image_size)
    self.train_cities, self.test_cities = _cities(train_cities), _cities(test_cities)
    if not self.train_cities or not self.test_cities:
      raise ValueError(f"config.evals.{ctx.name}: train_cities and test_cities must name cities")
    self.crops, self.l2, self.batch = int(crops_per_city), float(l2), int(batch_size)
    try:
      self.band_input = band_input_lib.parse(bands, spectral_mode)
    except ValueError as e:
      raise ValueError(f"config.evals.{ctx.name}: {e}") from None

  def _patch_features(self, enc, fn, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Crops a, b [N, 12, S, S] -> |f_a - f_b| per patch [N, S/p, S/p, D]."""
    side = self.size // enc.spec.patch
    out = []
    for i in range(0, len(a), self.batch):
      xa, _ = self.band_input.apply(a[i:i + self.batch])
      xb, _ = self.band_input.apply(b[i:i + self.batch])
      ta, tb = np.asarray(fn(enc.params, xa)), np.asarray(fn(enc.params, xb))
      d = np.abs(ta - tb).reshape(len(xa), -1, side, side, ta.shape[-1])  # [n, G', s, s, D]
      out.append(d.mean(axis=1))
    return np.concatenate(out)

  def _patch_fraction(self, masks: np.ndarray, patch: int) -> np.ndarray:
    n, h, w = masks.shape
    m = (masks == 1).astype(np.float64).reshape(n, h // patch, patch, w // patch, patch)
    return m.mean(axis=(2, 4))

  def run(self) -> dict[str, float]:
    enc = band_input_lib.encoder_for(load_encoder(self.ctx), self.band_input)
    kwargs = self.band_input.model_kwargs()
    fn = jax.jit(lambda p, x: encoder_tokens(enc.model, p, x, **kwargs))
    size, patch = self.size, enc.spec.patch
    rng = np.random.default_rng(self.ctx.seed)
    crops = {"a": [], "b": [], "mask": []}
    for city in self.train_cities:
      rec = _load(self.root, city)
      for r, c in crop_corners(rec["mask"].shape, size, self.crops, rng):
        for k in crops:
          crops[k].append(rec[k][..., r:r + size, c:c + size])
    feats = self._patch_features(enc, fn, np.stack(crops["a"]), np.stack(crops["b"]))
    frac = self._patch_fraction(np.stack(crops["mask"]), patch)
    d = feats.shape[-1]
    (w, bias), = ridge_path(feats.reshape(-1, d), frac.reshape(-1, 1), (self.l2,))
    train_scores = (feats.reshape(-1, d) @ w + bias)[:, 0]
    threshold = best_threshold(train_scores, frac.reshape(-1), patch * patch)
    acc = dense_metrics.ConfusionAccumulator(num_classes=2)
    for city in self.test_cities:
      rec = _load(self.root, city)
      corners = tile_corners(rec["mask"].shape, size)
      a = np.stack([rec["a"][..., r:r + size, c:c + size] for r, c in corners])
      b = np.stack([rec["b"][..., r:r + size, c:c + size] for r, c in corners])
      scores = (self._patch_features(enc, fn, a, b) @ w + bias)[..., 0]   # [n, s, s]
      pred = np.zeros(rec["mask"].shape, np.int64)
      for (r, c), s in zip(corners, scores):
        pred[r:r + size, c:c + size] = np.kron(s >= threshold, np.ones((patch, patch)))
      acc.update(rec["mask"], pred)
    metrics = dense_metrics.change_detection_metrics(acc.counts)
    metrics["threshold"] = threshold
    info = {"train_cities": self.train_cities, "test_cities": self.test_cities,
            "image_size": size, "crops_per_city": self.crops, "l2": self.l2,
            "train_patches": int(frac.size), "bands": list(self.band_input.names),
            "spectral_mode": self.band_input.mode, "drop_groups": kwargs.get("drop_groups", ()),
            "encoder": enc.source, "confusion_matrix": acc.counts}
    self.ctx.write_json("metrics.json", {"metrics": metrics, "info": info})
    return metrics

