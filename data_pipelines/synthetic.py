"""`data.source = "synthetic"`: deterministic smooth random cubes, no files.

Example i of the run is generated from (seed, i) alone, i.e. from its *global* index, so any
process layout (1 x 8 devices, 2 x 4, ...) sees the same global batches. With num_dates = T > 1
an example is a series [T, C, S, S]: date 0 is the single-date example, later dates differ from
it a little (a smooth per-band change plus noise, seeded by (seed, i, t)). Tests, benchmarks and
the tiny time-series config use it.
"""

from __future__ import annotations

import grain
import numpy as np


def _upsample(field: np.ndarray, size: int) -> np.ndarray:
  """[C, low, low] -> [C, size, size] by pixel repetition."""
  reps = -(-size // field.shape[-1])
  return np.repeat(np.repeat(field, reps, axis=1), reps, axis=2)[:, :size, :size]


class SyntheticBatch(grain.transforms.Map):
  """Global step k -> this host's rows of global batch k: {"cube": float32 [b, (T,) C, S, S]}."""

  def __init__(self, num_bands: int, size: int, batch: int, seed: int, process_index: int,
               process_count: int, num_dates: int = 1):
    self.num_bands, self.size, self.batch, self.seed = num_bands, size, batch, seed
    self.pi, self.pc, self.num_dates = process_index, process_count, num_dates

  def _example(self, index: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, index])
    low = max(2, self.size // 8)
    # Smooth spatial field per band, correlated across bands (a shared base + band offsets).
    base = rng.uniform(size=(1, low, low))
    field = 0.6 * base + 0.4 * rng.uniform(size=(self.num_bands, low, low))
    cube = _upsample(field, self.size)
    cube += 0.02 * rng.standard_normal(cube.shape)
    if self.num_dates == 1:
      return cube.astype(np.float32)
    dates = [cube]
    for t in range(1, self.num_dates):
      r = np.random.default_rng([self.seed, index, t])
      change = 0.05 * r.uniform(-1.0, 1.0, size=(self.num_bands, low, low))
      dates.append(cube + _upsample(change, self.size) + 0.01 * r.standard_normal(cube.shape))
    return np.stack(dates).astype(np.float32)

  def map(self, step: int) -> dict[str, np.ndarray]:
    local = self.batch // self.pc
    first = int(step) * self.batch + self.pi * local
    return {"cube": np.stack([self._example(first + j) for j in range(local)])}


def make_dataset(num_bands: int, size: int, batch: int, seed: int, process_index: int,
                 process_count: int, num_dates: int = 1) -> grain.IterDataset:
  """Endless per-host dataset of synthetic batches (checkpointable through its iterator)."""
  return grain.MapDataset.range(0, 1 << 40).map(SyntheticBatch(
      num_bands, size, batch, seed, process_index, process_count,
      num_dates)).to_iter_dataset()
