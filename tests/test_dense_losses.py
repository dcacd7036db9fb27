"""Per-pixel losses against torch.nn.functional (cross-entropy with ignore index and weights)."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from spectralgpt_jax import losses


def _case(seed=0, k=3):
  rng = np.random.default_rng(seed)
  logits = rng.normal(size=(2, 5, 6, k)).astype(np.float32)
  labels = rng.integers(-1, k, size=(2, 5, 6)).astype(np.int32)   # -1 = ignored
  return logits, labels


def _torch(logits, labels, weight=None):
  x = torch.from_numpy(logits).permute(0, 3, 1, 2)
  w = None if weight is None else torch.tensor(weight, dtype=torch.float32)
  return float(torch.nn.functional.cross_entropy(x, torch.from_numpy(labels).long(), weight=w,
                                                 ignore_index=-1))


def test_cross_entropy_with_ignore_index_matches_torch():
  logits, labels = _case()
  ours = float(losses.pixel_cross_entropy(jnp.asarray(logits), jnp.asarray(labels)))
  assert ours == pytest.approx(_torch(logits, labels), rel=1e-5)


def test_weighted_nll_on_log_probs_matches_torch():
  logits, labels = _case(1, k=2)
  labels = np.where(labels < 0, 0, labels)            # the official OSCD maps have no ignore
  weights = losses.oscd_class_weights(0.03)
  logp = torch.log_softmax(torch.from_numpy(logits), -1)
  ref = float(torch.nn.functional.nll_loss(logp.permute(0, 3, 1, 2),
                                           torch.from_numpy(labels).long(),
                                           weight=torch.tensor(weights)))
  ours = float(losses.pixel_cross_entropy(jnp.asarray(logp.numpy()), jnp.asarray(labels),
                                          class_weights=weights))
  assert ours == pytest.approx(ref, rel=1e-5)
  ours_ignore = float(losses.pixel_cross_entropy(jnp.asarray(logits), jnp.asarray(_case(1, 2)[1]),
                                                 class_weights=weights))
  assert ours_ignore == pytest.approx(_torch(logits, _case(1, 2)[1], weights), rel=1e-5)


def test_oscd_class_weights_official_formula():
  w0, w1 = losses.oscd_class_weights(0.02)
  assert (w0, w1) == pytest.approx((10 * 2 * 0.02, 2 * 0.98))
  with pytest.raises(ValueError, match="change fraction"):
    losses.oscd_class_weights(0.0)


def test_all_ignored_gives_zero_not_nan():
  logits, labels = _case()
  assert float(losses.pixel_cross_entropy(jnp.asarray(logits),
                                          jnp.full(labels.shape, -1))) == 0.0
