"""The blend accumulator: weighted sums of window scores over one window height of rows.

Only the rows [base, base + size) of the padded scene width are held (channels x size x width
float32, plus the summed weights and the validity of those rows), whatever the scene's height:
a 10980 px wide scene with 13 classes and 128 px windows holds 73 MB. `pop` hands out the rows
no later window reaches and moves the base down (predict/windows.py: RowPlan).
"""

from __future__ import annotations

import numpy as np


class RowAccumulator:
  """sum_w(scores) / sum(w) over the held rows [base, base + rows) of a `width` px wide scene
  (rows: one window height, more while a batch spans several row bands)."""

  def __init__(self, channels: int, size: int, width: int, weights: np.ndarray, base: int = 0):
    self.size, self.width, self.base = size, width, base
    self.weights = np.asarray(weights, np.float32)
    self.plain = bool(np.all(self.weights == 1.0))   # the plain mean: no multiply
    self.total = np.zeros((channels, size, width), np.float32)
    self.wsum = np.zeros((size, width), np.float32)
    self.valid = np.ones((size, width), bool)

  @property
  def rows(self) -> int:
    return self.wsum.shape[0]

  def _grow(self, rows: int) -> None:
    extra = rows - self.rows
    self.total = np.concatenate(
        [self.total, np.zeros((self.total.shape[0], extra, self.width), np.float32)], axis=1)
    self.wsum = np.concatenate([self.wsum, np.zeros((extra, self.width), np.float32)])
    self.valid = np.concatenate([self.valid, np.ones((extra, self.width), bool)])

  def add(self, y: int, x: int, scores: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Adds one window's scores [K, S, S] at (y, x) (y >= base)."""
    r = y - self.base
    s = scores.shape[-1]
    if r < 0:
      raise ValueError(f"window at row {y} is above the held rows (from {self.base})")
    if r + s > self.rows:
      self._grow(r + s)
    self.total[:, r:r + s, x:x + s] += scores if self.plain else scores * self.weights
    self.wsum[r:r + s, x:x + s] += self.weights
    if valid is not None:
      self.valid[r:r + s, x:x + s] &= valid

  def pop(self, end: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores [K, end - base, W], valid [end - base, W]) of the rows [base, end), blended;
    the held rows then start at `end`."""
    n = end - self.base
    if not 0 <= n <= self.rows:
      raise ValueError(f"cannot hand out rows [{self.base}, {end}) of {self.rows} held rows")
    if (self.wsum[:n] <= 0).any():
      raise ValueError(f"rows [{self.base}, {end}) hold pixels no window covered")
    scores = self.total[:, :n] / self.wsum[:n]
    valid = self.valid[:n].copy()
    keep = max(self.rows - n, self.size)
    if n:
      for name in ("total", "wsum", "valid"):
        a = getattr(self, name)
        rest = a[..., n:, :]
        fresh = np.full(a.shape[:-2] + (keep - rest.shape[-2], self.width),
                        a.dtype == bool, a.dtype)
        setattr(self, name, np.concatenate([rest, fresh], axis=-2))
    self.base = end
    return scores, valid
