"""Window plans over a scene and the blend weights of overlapping windows (numpy only).

Windows of `size` px start every `stride` px on each axis, the last one of each axis flush
with the scene's edge, so every pixel is covered (`tile_grid`); a scene smaller than the window
on an axis is padded at its bottom / right to the window (the readers pad, the plan works on
the padded size) and the padded pixels are never written.

Blend (`blend_weights`): each window's scores are multiplied by a weight per pixel, added, and
divided by the summed weights of the windows covering the pixel.
  "average": weight 1 everywhere, the plain mean of the overlapping windows (what `evaluate`
             scores by default: its numbers stay those of the protocol it reports).
  "cosine":  a separable raised-cosine (Hann) profile, w(i) = sin^2(pi (i + 0.5) / size) per
             axis, floored at 1e-3 so no pixel has weight 0. Window borders, where the model
             saw the least context, count least, so the seams of a plain average (a step where
             one window's border meets another's centre) vanish; a pixel covered by one window
             only keeps that window's scores exactly (the weights cancel). The default of
             `predict`.
Row bands (`RowPlan`): the windows sharing a top row y_k form band k; once bands 0..k are
added, the output rows [y_k, y_{k+1}) are final (no later window reaches them), so only the
rows of one window height are ever held (`predict/blend.py`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

BLENDS = ("cosine", "average")
WEIGHT_FLOOR = 1e-3


def tile_starts(length: int, size: int, stride: int) -> np.ndarray:
  """Starts of tiles covering [0, length): 0, stride, ..., last flush with the end
  ([0] when length <= size)."""
  if size < 1 or stride < 1:
    raise ValueError(f"tile size and stride must be >= 1, got size={size} stride={stride}")
  if stride > size:
    raise ValueError(f"stride {stride} > tile size {size} would leave pixels uncovered")
  if length <= size:
    return np.zeros(1, np.int64)
  starts = np.arange(0, length - size + 1, stride)
  if starts[-1] != length - size:
    starts = np.append(starts, length - size)
  return starts.astype(np.int64)


def tile_grid(height: int, width: int, size: int, stride: int) -> np.ndarray:
  """[N, 2] int64 (y, x) top-left corners covering the image, row by row."""
  ys, xs = tile_starts(height, size, stride), tile_starts(width, size, stride)
  return np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


def coverage(height: int, width: int, corners: np.ndarray, size: int) -> np.ndarray:
  """[H, W] int64: how many of the tiles at `corners` ([N, 2] y, x) contain each pixel."""
  out = np.zeros((height, width), np.int64)
  for y, x in np.asarray(corners, np.int64).reshape(-1, 2):
    out[y:y + size, x:x + size] += 1
  return out


def blend_weights(size: int, blend: str = "cosine") -> np.ndarray:
  """[size, size] float32 weight of each pixel of a window (module docstring)."""
  if blend not in BLENDS:
    raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
  if blend == "average":
    return np.ones((size, size), np.float32)
  profile = np.sin(np.pi * (np.arange(size) + 0.5) / size) ** 2
  profile = np.maximum(profile, WEIGHT_FLOOR)
  return np.outer(profile, profile).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class RowPlan:
  """The windows of a scene of `height` x `width` px (padded to the window where smaller)."""
  height: int
  width: int
  size: int
  stride: int

  @property
  def padded(self) -> tuple[int, int]:
    return max(self.height, self.size), max(self.width, self.size)

  @property
  def ys(self) -> np.ndarray:
    return tile_starts(self.padded[0], self.size, self.stride)

  @property
  def xs(self) -> np.ndarray:
    return tile_starts(self.padded[1], self.size, self.stride)

  @property
  def num_bands(self) -> int:
    return len(self.ys)

  @property
  def num_windows(self) -> int:
    return len(self.ys) * len(self.xs)

  def rows_of(self, band: int) -> tuple[int, int]:
    """Output rows [r0, r1) that are final once bands 0..band are added (clipped to the
    scene)."""
    ys = self.ys
    end = int(ys[band + 1]) if band + 1 < len(ys) else self.padded[0]
    return min(int(ys[band]), self.height), min(end, self.height)

  def warmup(self, band: int) -> int:
    """The first band whose windows reach the rows of `band`: a run starting at `band` adds
    bands warmup..band-1 first without writing them (resume, a process's share)."""
    ys, first = self.ys, band
    while first > 0 and ys[first - 1] + self.size > ys[band]:
      first -= 1
    return first


def split_bands(num_bands: int, parts: int) -> list[range]:
  """Contiguous shares of the bands for `parts` processes (the first ones one band longer)."""
  parts = max(1, min(parts, num_bands))
  bounds = np.linspace(0, num_bands, parts + 1).round().astype(int)
  return [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
