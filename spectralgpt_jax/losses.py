"""SpectralGPT multi-target reconstruction loss (official `forward_loss`), outside the model.

  L1 = sum_{masked (n,l)} mean_d (pred - target)^2 / #masked          masked-token MSE (MAE)
  L3 = mean_{n, s} mean_d (sum_g pred[n,g,s] - sum_g x[n,g,s])^2     spectral-sum term
  loss = w1 * L1 + w3 * L3 (official weights 1 and 1)

L3 covers *every* spatial position s, visible and masked, as the official code does, and always
uses raw (un-normalised) targets, even with norm_pix (the official computes it before
normalising). The patch dimension is derived, not hard-coded to 192.

`valid` (the tokens of groups a band set lacks are 0: spectral resampling's dropped groups)
leaves those tokens out of both terms: L1 counts only valid masked tokens, L3 sums g over the
valid groups only (their target planes are 0, not data).

Dense tasks: `pixel_cross_entropy` (torch cross-entropy / NLL with class weights and ignore
index -1) and `oscd_class_weights` (the official OSCD weights from the training change share).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NORM_PIX_EPS = 1e-6


def normalize_patches(target: jax.Array) -> jax.Array:
  """Per-token standardisation (MAE norm_pix_loss); variance unbiased as torch's .var()."""
  mean = target.mean(axis=-1, keepdims=True)
  var = target.var(axis=-1, keepdims=True, ddof=1)
  return (target - mean) / jnp.sqrt(var + NORM_PIX_EPS)


def masked_mse(pred: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
  """pred, target [B, L, P]; mask [B, L] (1 = removed). Mean squared error over masked tokens.

  With no masked token (mask ratio 0) the term is 0, where the official division gives NaN.
  """
  per_token = jnp.mean(jnp.square(pred - target), axis=-1)
  return jnp.sum(per_token * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def spectral_sum_mse(pred: jax.Array, target: jax.Array, grid: tuple[int, int, int],
                     groups_per_date: int | None = None,
                     valid: jax.Array | None = None) -> jax.Array:
  """MSE between per-location sums over spectral groups, over all positions.

  pred, target [B, L, P] with L = G*H'*W' (grid); with a separate date axis
  (G = dates * groups_per_date) the sum runs over the groups of each date. valid [L] or
  [B, L] (optional): the sums take only tokens with valid 1.
  """
  b, _, p = pred.shape
  g, h, w = grid
  k = groups_per_date or g
  shape = (b, g // k, k, h * w, p)
  if valid is not None:
    keep = jnp.broadcast_to(valid.astype(jnp.float32), pred.shape[:2])[..., None]
    pred, target = pred * keep, target * keep
  diff = pred.reshape(shape).sum(axis=2) - target.reshape(shape).sum(axis=2)
  return jnp.mean(jnp.square(diff))


def spectralgpt_loss(pred: jax.Array, target: jax.Array, mask: jax.Array,
                     grid: tuple[int, int, int], *, mse_weight: float = 1.0,
                     spectral_weight: float = 1.0, norm_pix: bool = False,
                     groups_per_date: int | None = None,
                     valid: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Official SpectralGPT loss. target = patchify(cube). Returns (loss, {"loss_mse", "loss_spectral"}).

  valid [L] or [B, L] (optional, 0 = a dropped group's token): left out of both terms.
  Computed in float32 whatever the compute dtype of `pred`.
  """
  pred = pred.astype(jnp.float32)
  target = target.astype(jnp.float32)
  mask = mask.astype(jnp.float32)
  if valid is not None:
    mask = mask * jnp.broadcast_to(valid.astype(jnp.float32), mask.shape)
  spectral = spectral_sum_mse(pred, target, grid, groups_per_date, valid)
  mse = masked_mse(pred, normalize_patches(target) if norm_pix else target, mask)
  loss = mse_weight * mse + spectral_weight * spectral
  return loss, {"loss_mse": mse, "loss_spectral": spectral}


# ------------------------------------------------------------------ dense (per-pixel) losses
IGNORE_INDEX = -1  # masks of the dense datasets: -1 = pixel not scored
OSCD_FP_MODIFIER = 10.0


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array, *,
                        class_weights: jax.Array | None = None,
                        ignore_index: int = IGNORE_INDEX) -> jax.Array:
  """torch cross_entropy / nll_loss(log_softmax) with `weight` and `ignore_index`, mean
  reduction: sum_i w[y_i] (-log p_i[y_i]) / sum_i w[y_i] over pixels i with y_i != ignore.

  logits [..., K] (log-probabilities work too: log_softmax is idempotent on them), labels
  [...] int. 0 when no pixel is scored (torch gives NaN there).
  """
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  valid = labels != ignore_index
  safe = jnp.where(valid, labels, 0).astype(jnp.int32)
  picked = jnp.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
  w = jnp.ones_like(picked) if class_weights is None else jnp.asarray(
      class_weights, jnp.float32)[safe]
  w = jnp.where(valid, w, 0.0)
  return -jnp.sum(w * picked) / jnp.maximum(jnp.sum(w), 1e-12)


def oscd_class_weights(change_fraction: float,
                       fp_modifier: float = OSCD_FP_MODIFIER) -> tuple[float, float]:
  """The official OSCD NLL weights from the share p of change pixels in the training set:
  [fp_modifier * 2 p, 2 (1 - p)] for (no change, change)."""
  p = float(change_fraction)
  if not 0.0 < p < 1.0:
    raise ValueError(f"change fraction must be in (0, 1), got {p}")
  return (fp_modifier * 2.0 * p, 2.0 * (1.0 - p))
