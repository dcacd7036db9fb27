"""Window sources of the engine (predict/engine.py): `windows(corners, size)` -> (one
[N, C, S, S] float32 array per date, valid [N, S, S] bool).

`ArraySource`: images already in memory ([C, H, W], or one per date), padded at the bottom /
right to the window where smaller (`pad_to`); what `evaluate` predicts. `RowSource`: scenes read
one band of rows at a time through a `read_rows(r0, r1) -> (dates [C, r1 - r0, W] each, valid
[r1 - r0, W])` callable (predict/scene.py), the rows of the last two window tops kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

PAD_MODES = ("reflect", "edge", "constant")


def pad_to(image: np.ndarray, size: int, mode: str = "reflect") -> np.ndarray:
  """[..., H, W] padded at the bottom / right to at least [..., size, size]: "reflect"
  (mirrored without repeating the edge row), "edge" (the edge row repeated), "constant"
  (zeros)."""
  if mode not in PAD_MODES:
    raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {mode!r}")
  h, w = image.shape[-2:]
  pad = [(0, 0)] * (image.ndim - 2) + [(0, max(0, size - h)), (0, max(0, size - w))]
  if pad[-2][1] == 0 and pad[-1][1] == 0:
    return image
  if mode == "reflect" and min(h, w) < 2:
    mode = "edge"   # nothing to mirror in a one-pixel axis
  return np.pad(image, pad, mode=mode)


def check_dates(images) -> tuple[np.ndarray, ...]:
  """One [C, H, W] array per date, all of the same H, W."""
  dates = (images,) if isinstance(images, np.ndarray) else tuple(np.asarray(d) for d in images)
  if not dates:
    raise ValueError("no image given")
  for i, d in enumerate(dates):
    if d.ndim != 3:
      raise ValueError(f"image of date {i} must be [C, H, W], got shape {d.shape}")
    if d.shape[1:] != dates[0].shape[1:]:
      raise ValueError(f"image of date {i} is {d.shape[1:]}, date 0 is {dates[0].shape[1:]}")
  return dates


def _cut(arrays: Sequence[np.ndarray], corners, size: int) -> list[np.ndarray]:
  return [np.stack([a[..., y:y + size, x:x + size] for y, x in corners]) for a in arrays]


class ArraySource:
  """In-memory images (one [C, H, W] per date; `valid` [H, W] optional)."""

  def __init__(self, images, size: int, pad_mode: str = "reflect",
               valid: np.ndarray | None = None):
    dates = check_dates(images)
    self.height, self.width = dates[0].shape[1:]
    self.dates = tuple(pad_to(d, size, pad_mode) for d in dates)
    v = np.ones((self.height, self.width), bool) if valid is None else np.asarray(valid, bool)
    self.valid = pad_to(v, size, "edge")

  def windows(self, corners, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    return _cut(self.dates, corners, size), _cut([self.valid], corners, size)[0]


def _pad_rows(x: np.ndarray, rows: int, width: int, mode: str = "reflect") -> np.ndarray:
  """[..., n, w] padded at the bottom / right to at least [..., rows, width]."""
  n, w = x.shape[-2:]
  pad = [(0, 0)] * (x.ndim - 2) + [(0, max(0, rows - n)), (0, max(0, width - w))]
  if mode == "reflect" and (pad[-2][1] >= n or pad[-1][1] >= w):
    mode = "edge"   # too short to mirror
  return np.pad(x, pad, mode=mode) if pad[-2][1] or pad[-1][1] else x


class RowSource:
  """Scenes read by rows: `read_rows(r0, r1)` -> (tuple of [C, n, W] per date, valid [n, W])
  for rows inside the scene; windows past a scene smaller than the window are reflect-padded
  (as ArraySource)."""

  def __init__(self, read_rows: Callable, height: int, width: int, size: int,
               padded_width: int = 0):
    self.read_rows, self.height, self.width = read_rows, height, width
    self.padded_width = max(padded_width, width)
    self.cache: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}

  def _rows(self, y: int, size: int):
    if y not in self.cache:
      dates, valid = self.read_rows(y, min(y + size, self.height))
      dates = [_pad_rows(np.asarray(d, np.float32), size, self.padded_width) for d in dates]
      valid = _pad_rows(np.asarray(valid, bool), size, self.padded_width, "edge")
      while len(self.cache) >= 2:
        self.cache.pop(min(self.cache))
      self.cache[y] = (dates, valid)
    return self.cache[y]

  def windows(self, corners, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    out_dates, out_valid = None, []
    for y, x in corners:
      dates, valid = self._rows(y, size)
      crops = [d[:, :, x:x + size] for d in dates]
      out_dates = [[c] for c in crops] if out_dates is None else \
          [o + [c] for o, c in zip(out_dates, crops)]
      out_valid.append(valid[:, x:x + size])
    return [np.stack(o) for o in out_dates], np.stack(out_valid)
