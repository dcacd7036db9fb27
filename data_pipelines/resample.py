"""Separable image resampling in numpy: resize and crop-resize of [..., H, W] arrays.

Each axis is resampled with a dense (out, in) weight matrix, so a resize is two matmuls
(BLAS), which on CPU beats gather-based kernels for the sizes used here (<= 256 px).
Conventions follow `torch.nn.functional.interpolate(..., align_corners=False)`:

* pixel centres at half-integer coordinates (pixel-is-area, like GDAL);
* bilinear uses the triangle kernel; bicubic Keys' kernel with a = -0.75 without antialias
  (torch/OpenCV) and a = -0.5 with antialias (torch's antialias path and PIL use -0.5, also
  when upsampling);
* without antialias, out-of-range taps are clamped to the edge pixel (torch);
* with antialias, taps outside the image are dropped and the weights renormalised, and when
  downsampling the kernel is stretched by the scale factor (torch `antialias=True`, PIL);
* "nearest" picks the source pixel containing the output pixel centre (torch "nearest-exact"),
  which is the right choice for label masks.
"""

from __future__ import annotations

import functools
import math

import numpy as np

METHODS = ("nearest", "bilinear", "bicubic")


def _cubic(x: np.ndarray, a: float = -0.75) -> np.ndarray:
  x = np.abs(x)
  return np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                  np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))


def _linear(x: np.ndarray) -> np.ndarray:
  return np.maximum(0.0, 1.0 - np.abs(x))


@functools.lru_cache(maxsize=512)
def axis_matrix(in_size: int, out_size: int, method: str = "bicubic", start: float = 0.0,
                length: float | None = None, antialias: bool = True) -> np.ndarray:
  """(out_size, in_size) float32 weights resampling the window [start, start+length) of an axis.

  `start`/`length` are in input pixels (a crop); the default is the whole axis.
  """
  if method not in METHODS:
    raise ValueError(f"unknown resampling method {method!r}; choose from {METHODS}")
  length = float(in_size if length is None else length)
  scale = length / out_size                       # input pixels per output pixel
  centers = start + (np.arange(out_size) + 0.5) * scale   # in continuous input coordinates
  mat = np.zeros((out_size, in_size), np.float64)
  rows = np.arange(out_size)
  if method == "nearest":
    src = np.clip(np.floor(centers).astype(np.int64), 0, in_size - 1)
    mat[rows, src] = 1.0
    return mat.astype(np.float32)
  if method == "bicubic":
    kernel = functools.partial(_cubic, a=-0.5 if antialias else -0.75)
    radius = 2.0
  else:
    kernel, radius = _linear, 1.0
  stretch = max(scale, 1.0) if antialias else 1.0
  support = radius * stretch
  # Taps: every input pixel whose centre lies within `support` of the sampling point.
  first = np.floor(centers - 0.5 - support).astype(np.int64) + 1
  ntaps = int(math.ceil(2 * support)) + 1
  taps = first[:, None] + np.arange(ntaps)[None, :]                 # [out, ntaps]
  w = kernel((taps + 0.5 - centers[:, None]) / stretch)
  if antialias:
    # torch/PIL antialias: drop taps outside the image and renormalise.
    w = np.where((taps >= 0) & (taps < in_size), w, 0.0)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
  taps = np.clip(taps, 0, in_size - 1)                              # edge replicate
  np.add.at(mat, (np.repeat(rows, ntaps), taps.ravel()), w.ravel())
  return mat.astype(np.float32)


_BLOCK = 32   # output rows per band block


@functools.lru_cache(maxsize=1024)
def _blocks(in_size: int, out_size: int, method: str, start: float, length: float | None,
            antialias: bool) -> tuple[tuple[int, int, int, int, np.ndarray, np.ndarray], ...]:
  """The (out, in) matrix cut into row blocks with their nonzero input column range.

  Resampling weights are banded (4 taps per output pixel when upsampling bicubic), so
  multiplying each 32-row block by only the input rows it touches needs 2-4x fewer flops than
  the dense matmul. Entries: (out_start, out_end, in_start, in_end, W_block, W_block.T).
  """
  mat = axis_matrix(in_size, out_size, method, start, length, antialias)
  blocks = []
  for s in range(0, out_size, _BLOCK):
    sub = mat[s:s + _BLOCK]
    cols = np.nonzero(sub.any(axis=0))[0]
    a, b = (int(cols[0]), int(cols[-1]) + 1) if cols.size else (0, 1)
    w = np.ascontiguousarray(sub[:, a:b])
    blocks.append((s, s + sub.shape[0], a, b, w, np.ascontiguousarray(w.T)))
  return tuple(blocks)


def _along_w(x: np.ndarray, blocks, out_size: int) -> np.ndarray:
  y = np.empty(x.shape[:-1] + (out_size,), np.float32)
  for s, e, a, b, _, wt in blocks:
    np.matmul(x[..., a:b], wt, out=y[..., s:e])
  return y


def _along_h(x: np.ndarray, blocks, out_size: int) -> np.ndarray:
  y = np.empty(x.shape[:-2] + (out_size, x.shape[-1]), np.float32)
  for s, e, a, b, w, _ in blocks:
    np.matmul(w, x[..., a:b, :], out=y[..., s:e, :])
  return y


def resize(x: np.ndarray, out_hw: tuple[int, int], method: str = "bicubic",
           box: tuple[float, float, float, float] | None = None,
           antialias: bool = True) -> np.ndarray:
  """Resample [..., H, W] to [..., out_h, out_w] (float32 out for float methods).

  box: optional crop (top, left, height, width) in input pixels, resampled to out_hw; taps
  outside the box read real neighbouring pixels (unlike cropping first).
  """
  h, w = x.shape[-2:]
  top, left, bh, bw = box if box is not None else (0.0, 0.0, float(h), float(w))
  if box is None and (h, w) == tuple(out_hw):
    return x if method == "nearest" else x.astype(np.float32, copy=False)
  if method == "nearest":
    # Integer gather keeps dtype (masks stay int).
    rows = np.argmax(axis_matrix(h, out_hw[0], "nearest", top, bh), axis=1)
    cols = np.argmax(axis_matrix(w, out_hw[1], "nearest", left, bw), axis=1)
    return x[..., rows[:, None], cols[None, :]]
  xf = x.astype(np.float32, copy=False)
  bh_blocks = _blocks(h, out_hw[0], method, float(top), float(bh), antialias)
  bw_blocks = _blocks(w, out_hw[1], method, float(left), float(bw), antialias)
  if out_hw[1] * h <= out_hw[0] * w:   # shrink the larger intermediate first
    return _along_h(_along_w(xf, bw_blocks, out_hw[1]), bh_blocks, out_hw[0])
  return _along_w(_along_h(xf, bh_blocks, out_hw[0]), bw_blocks, out_hw[1])


def resize_cube(cube: np.ndarray, size: int, method: str = "bicubic",
                antialias: bool = True) -> np.ndarray:
  """(bands, H, W) -> (bands, size, size) float32, bicubic by default (official Resize)."""
  if cube.ndim < 2:
    raise ValueError(f"resize_cube expects [..., H, W], got shape {cube.shape}")
  return resize(cube, (size, size), method, antialias=antialias)
