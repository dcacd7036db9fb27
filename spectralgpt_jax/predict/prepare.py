"""The scenes of one prediction as the model's input: bands by name, normalization from the
weights' record, nodata.

`SceneInput(scenes, bands, normalization, minmax_scope)`: scene 0's grid is the output grid
(the others are aligned onto it first, predict/scene.py: align); every scene must hold the
model's bands (by name, in any order). `read_rows(r0, r1)` -> (one normalized float32
[C, n, W] per date, valid [n, W]: valid in every date), invalid pixels set to 0 after
normalization (their scores are never written).

Normalization is the training run's (checkpoint meta / export manifest,
data_pipelines/normalization.py): per-pixel modes (zscore, sentinel_clip, none) on each band of
rows; "minmax" with the run's `data.minmax_scope`: "image" (the default) normalizes each band
by its min and max over the valid pixels of the whole scene, found by one streaming pass over
its rows first (bounded memory, the scene is read twice); "patch" normalizes every window on
its own (`window_normalizer`), as the official OSCD code does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from data_pipelines import normalization, schema
from data_pipelines.errors import BadInputError

STATS_ROWS = 512   # rows per read of the min/max pass


def check_bands(scene, wanted: Sequence[str]) -> None:
  have = [schema.normalize_band_name(b) for b in scene.bands]
  missing = [b for b in wanted if schema.normalize_band_name(b) not in have]
  if missing:
    raise BadInputError(scene.path, missing[0], f"scene lacks band(s) {missing} that the model "
                        f"needs (the scene has {list(scene.bands)})")


class SceneInput:
  """The dates of one prediction, read by rows and normalized (module docstring)."""

  def __init__(self, scenes: Sequence[Any], bands: Sequence[str],
               norm: Mapping[str, Any] | None, minmax_scope: str = "image",
               units: str = "DN"):
    if not norm:
      raise ValueError(f"the weights store no normalization record; {scenes[0].path} cannot be "
                       "prepared as the model was trained")
    for s in scenes:
      check_bands(s, bands)
    self.scenes, self.bands, self.norm, self.units = list(scenes), list(bands), dict(norm), units
    self.mode = normalization.MODE_ALIASES.get(norm.get("mode"), norm.get("mode"))
    self.scope = minmax_scope if self.mode == "minmax" else "pixel"
    self.eps = np.float32(norm.get("eps", 1e-12))
    self.grid = scenes[0].grid
    self.ranges: list[tuple[np.ndarray, np.ndarray]] | None = None

  @property
  def height(self) -> int:
    return self.grid.height

  @property
  def width(self) -> int:
    return self.grid.width

  def _raw_rows(self, r0: int, r1: int) -> tuple[list[np.ndarray], np.ndarray]:
    dates, valid = [], np.ones((r1 - r0, self.width), bool)
    for s in self.scenes:
      x, v = s.read_rows(r0, r1, self.bands)
      dates.append(x)
      valid &= v
    return dates, valid

  def min_max(self) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per date (lo, hi) float32 [C, 1, 1] over the valid pixels of the whole scene."""
    if self.ranges is None:
      c = len(self.bands)
      lo = [np.full((c, 1, 1), np.inf, np.float32) for _ in self.scenes]
      hi = [np.full((c, 1, 1), -np.inf, np.float32) for _ in self.scenes]
      for r0 in range(0, self.height, STATS_ROWS):
        dates, valid = self._raw_rows(r0, min(r0 + STATS_ROWS, self.height))
        if not valid.any():
          continue
        for i, x in enumerate(dates):
          v = x[:, valid]
          lo[i] = np.minimum(lo[i], v.min(1)[:, None, None])
          hi[i] = np.maximum(hi[i], v.max(1)[:, None, None])
      if not np.isfinite(lo[0]).all():
        raise BadInputError(self.scenes[0].path, "nodata", "no valid pixel in the scene")
      self.ranges = list(zip(lo, hi))
    return self.ranges

  def _normalize(self, x: np.ndarray, i: int) -> np.ndarray:
    if self.scope == "image":
      lo, hi = self.min_max()[i]
      y = np.subtract(x, lo, dtype=np.float32)
      y /= hi - lo + self.eps
      return y
    if self.scope == "patch":
      return x   # per window (window_normalizer)
    return normalization.normalize_cube(x, self.bands, self.norm, units=self.units)

  def read_rows(self, r0: int, r1: int) -> tuple[list[np.ndarray], np.ndarray]:
    dates, valid = self._raw_rows(r0, r1)
    out = []
    for i, x in enumerate(dates):
      y = self._normalize(x, i)
      if not valid.all():
        y = np.where(valid, y, np.float32(0))
      out.append(y)
    return out, valid

  def window_normalizer(self) -> Callable[[np.ndarray], np.ndarray] | None:
    """What each window [N, C, S, S] still needs: minmax per window with scope "patch"."""
    if self.scope != "patch":
      return None
    return lambda x: normalization.minmax(x, float(self.eps))
