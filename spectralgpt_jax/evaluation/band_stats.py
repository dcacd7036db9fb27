"""Per-band image statistics as features: the no-encoder reference of the feature evaluators.

Select it with `pretrained="band_stats"` (features.BAND_STATS) in an eval config or sweep; the
linear probe and k-NN then score, with the same split, normalization and bootstrap as an
encoder, the features
  [mean over pixels of each band, std over pixels of each band]   -> [N, 2C] float32
of the cube the data pipeline yields (normalized, eval resize + center crop), so a
pretrained encoder can be compared with what plain spectral statistics already give.
Rows are returned in `features.canonical_order` (sorted by example id), as for an encoder.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from data_pipelines import pipeline
from spectralgpt_jax.evaluation import features as features_lib


def band_statistics(cube: np.ndarray) -> np.ndarray:
  """cube [B, C, H, W] (or [B, T, C, H, W]: dates folded into bands) -> [B, 2 * C'] float32:
  per-band means, then per-band standard deviations (population, ddof=0)."""
  x = np.asarray(cube, np.float64)
  x = x.reshape(x.shape[0], -1, x.shape[-2] * x.shape[-1])
  return np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1).astype(np.float32)


def extract(data_cfg: ml_collections.ConfigDict) -> features_lib.FeatureSet:
  """Band statistics of every example of the split (gathered over processes), sorted by id."""
  cfg = features_lib.eval_data_config(data_cfg)
  feats, labels, ids = [], [], []
  for batch in pipeline.make_iterator(cfg):
    feats.append(band_statistics(batch["cube"]))
    labels.append(np.asarray(batch["label"]))
    ids.append(np.asarray(batch["key"]).astype(str))
  return features_lib.collect(feats, labels, ids, cfg)
