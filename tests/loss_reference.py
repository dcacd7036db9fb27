"""Independent float64 numpy reference of the official SpectralGPT loss (spec section 1.3),
with explicit loops instead of reshapes, for the loss tests of both model implementations."""

from __future__ import annotations

from typing import Tuple

import numpy as np


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
