"""Reconstruction panels: what the MAE sees and what it predicts, as one RGB PNG.

One row per example (left to right):
  original RGB composite (B4/B3/B2) | masked input | reconstruction | reconstruction with the
  visible tubelets pasted back | per-band absolute error (one small tile per band, hot colours).
The masking is spectral as well as spatial (a token is 3 bands x p x p), so in the masked
input a pixel can lose some of its R, G, B channels and not others: lost channels are grey.
The RGB stretch (2nd-98th percentile of the original, per channel) is shared by all columns.
Numpy (tubelet layout from the model's patchify); `encode_png` needs only zlib.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from spectralgpt_jax.models.patch_embed import fold_dates, patchify, unpatchify

RGB_BANDS = ("B04", "B03", "B02")
GAP = 2  # pixels of white between tiles


def encode_png(rgb: np.ndarray) -> bytes:
  """uint8 [H, W, 3] -> PNG bytes (8-bit RGB, no filtering)."""
  rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
  h, w, c = rgb.shape
  if c != 3:
    raise ValueError(f"encode_png wants [H, W, 3], got {rgb.shape}")

  def chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

  raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
          + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
  yi = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
  xi = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
  return img[yi][:, xi]


def _hot(x: np.ndarray) -> np.ndarray:
  """[H, W] in [0, 1] -> [H, W, 3] black-red-yellow-white."""
  x = np.clip(x, 0, 1)[..., None]
  return np.clip(np.concatenate([3 * x, 3 * x - 1, 3 * x - 2], -1), 0, 1)


def _stretch(rgb: np.ndarray, ref: np.ndarray) -> np.ndarray:
  """[3, H, W] -> [H, W, 3] in [0, 1], percentiles of `ref` per channel."""
  lo = np.percentile(ref, 2, axis=(1, 2), keepdims=True)
  hi = np.percentile(ref, 98, axis=(1, 2), keepdims=True)
  return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-6), 0, 1).transpose(1, 2, 0)


def pixel_mask(mask: np.ndarray, grid: tuple[int, int, int], t_patch: int,
               patch: int) -> np.ndarray:
  """Token mask [N, G*h*w] (1 = removed) -> band-pixel mask [N, G*t, h*p, w*p]."""
  n = mask.shape[0]
  g, h, w = grid
  m = mask.reshape(n, g, 1, h, 1, w, 1)
  m = np.broadcast_to(m, (n, g, t_patch, h, patch, w, patch))
  return m.reshape(n, g * t_patch, h * patch, w * patch)


def denormalize_pred(pred: np.ndarray, target: np.ndarray, eps: float = 1e-6) -> np.ndarray:
  """Undo the norm_pix target standardisation with the true patches' mean/var (ddof=1)."""
  mean = target.mean(-1, keepdims=True)
  var = target.var(-1, keepdims=True, ddof=1)
  return pred * np.sqrt(var + eps) + mean


def rgb_indices(bands: Sequence[str]) -> list[int]:
  """Positions of B4, B3, B2 in `bands` (the first three bands when any is missing)."""
  bands = list(bands)
  if all(b in bands for b in RGB_BANDS):
    return [bands.index(b) for b in RGB_BANDS]
  return [0, min(1, len(bands) - 1), min(2, len(bands) - 1)]


def _row(cube, recon, pmask, rgb_idx, scale) -> np.ndarray:
  c, h, w = cube.shape
  th, tw = h * scale, w * scale
  ref = cube[rgb_idx]
  original = _stretch(ref, ref)
  masked = np.where(pmask[rgb_idx].transpose(1, 2, 0) > 0, 0.5, original)
  recon_rgb = _stretch(recon[rgb_idx], ref)
  pasted = _stretch(np.where(pmask[rgb_idx] > 0, recon[rgb_idx], ref), ref)
  tiles = [_resize_nearest(t, th, tw) for t in (original, masked, recon_rgb, pasted)]
  err = np.abs(recon - cube)
  err = err / max(float(np.percentile(err, 99)), 1e-6)
  cols = math.ceil(c / 2)
  eh, ew = (th - GAP) // 2, (tw - GAP) // 2
  grid = np.ones((th, cols * (ew + GAP) - GAP, 3))
  for b in range(c):
    y, x = (b // cols) * (eh + GAP), (b % cols) * (ew + GAP)
    grid[y:y + eh, x:x + ew] = _resize_nearest(_hot(err[b]), eh, ew)
  gap = np.ones((th, GAP, 3))
  parts = []
  for t in tiles + [grid]:
    parts += [t, gap]
  return np.concatenate(parts[:-1], axis=1)


def make_panel(cube: np.ndarray, pred: np.ndarray, mask: np.ndarray, *,
               grid: tuple[int, int, int], t_patch: int, patch: int, bands: Sequence[str],
               norm_pix: bool = False, min_tile: int = 96) -> np.ndarray:
  """uint8 [rows, cols, 3] panel.

  Args:
    cube: [N, C, H, W] model input (normalised), or a series [N, T, C, H, W] (its dates side
      by side as T*C bands: RGB of the first date, errors of every date's bands);
    pred: [N, L, t*p*p] model output; mask: [N, L] (1 = removed);
    grid: token grid (G, H/p, W/p); bands: names of the C bands.
  """
  cube = np.asarray(fold_dates(np.asarray(cube, np.float32)))
  pred = np.asarray(pred, np.float32)
  if norm_pix:
    pred = denormalize_pred(pred, np.asarray(patchify(cube, t_patch, patch)))
  recon = np.asarray(unpatchify(pred, grid, t_patch, patch))
  pmask = pixel_mask(np.asarray(mask), grid, t_patch, patch)
  scale = max(1, math.ceil(min_tile / cube.shape[-2]))
  idx = rgb_indices(bands)
  rows = [_row(cube[i], recon[i], pmask[i], idx, scale) for i in range(cube.shape[0])]
  sep = np.ones((GAP * 2, rows[0].shape[1], 3))
  out = []
  for r in rows:
    out += [r, sep]
  return (np.concatenate(out[:-1], axis=0) * 255).round().astype(np.uint8)
