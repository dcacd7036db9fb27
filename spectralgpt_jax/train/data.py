"""The loop's view of the input: a checkpointable iterator of host-local batches + metadata.

`config.data` is `data_pipelines.pipeline.default_data_config()` (TFRecord shards or tfds via
grain). One extra source lives here, `source="synthetic"`: deterministic smooth random cubes
indexed by *global* example number, so any process layout (1 x 8 devices, 2 x 4, ...) sees the
same global batches. Tests and benchmarks use it; it needs no files.
"""

from __future__ import annotations

from typing import Any

import grain
import numpy as np

from data_pipelines import schema


class SyntheticBatch(grain.transforms.Map):
  """Global step k -> this host's rows of global batch k: {"cube": float32 [b, C, S, S]}."""

  def __init__(self, num_bands: int, size: int, batch: int, seed: int, process_index: int,
               process_count: int):
    self.num_bands, self.size, self.batch, self.seed = num_bands, size, batch, seed
    self.pi, self.pc = process_index, process_count

  def _example(self, index: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, index])
    low = max(2, self.size // 8)
    # Smooth spatial field per band, correlated across bands (a shared base + band offsets).
    base = rng.uniform(size=(1, low, low))
    field = 0.6 * base + 0.4 * rng.uniform(size=(self.num_bands, low, low))
    reps = -(-self.size // low)
    cube = np.repeat(np.repeat(field, reps, axis=1), reps, axis=2)[:, :self.size, :self.size]
    cube += 0.02 * rng.standard_normal(cube.shape)
    return cube.astype(np.float32)

  def map(self, step: int) -> dict[str, np.ndarray]:
    local = self.batch // self.pc
    first = int(step) * self.batch + self.pi * local
    return {"cube": np.stack([self._example(first + j) for j in range(local)])}


def make_iterator(data_cfg, *, process_index: int, process_count: int) -> grain.DatasetIterator:
  """Iterator of host-local batches {"cube": float32 [batch/processes, C, S, S], ...}."""
  if data_cfg.batch_size % process_count:
    raise ValueError(f"config.data.batch_size {data_cfg.batch_size} is not divisible by "
                     f"{process_count} processes")
  if data_cfg.source == "synthetic":
    bands = schema.parse_band_list(data_cfg.bands)
    ds = grain.MapDataset.range(0, 1 << 40).map(SyntheticBatch(
        len(bands), int(data_cfg.image_size), int(data_cfg.batch_size), int(data_cfg.seed),
        process_index, process_count))
    return iter(ds.to_iter_dataset())
  from data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  return pipeline.make_pipeline(data_cfg, process_index=process_index,
                                process_count=process_count)


def data_meta(data_cfg) -> dict[str, Any]:
  """{"bands": [...], "normalization": {...}} for the checkpoint meta (what inference needs to
  prepare inputs the way training saw them)."""
  bands = list(schema.parse_band_list(data_cfg.bands))
  norm: dict[str, Any] = {"mode": data_cfg.normalization, "image_size": int(data_cfg.image_size)}
  if data_cfg.normalization == "minmax":
    norm["eps"] = float(data_cfg.minmax_eps)
  elif data_cfg.normalization in ("zscore", "sentinel_clip"):
    norm["stats"] = data_cfg.stats
    norm["quantize"] = bool(data_cfg.sentinel_clip_quantize)
    try:
      from data_pipelines import sources, stats  # pylint: disable=g-import-not-at-top
      st = (stats.stats_from_manifest(sources.read_manifest(data_cfg.paths))
            if data_cfg.stats == "manifest" else stats.get_stats(data_cfg.stats))
      mean, std = st.for_bands(bands)
      norm.update(mean=[float(v) for v in mean], std=[float(v) for v in std], units=st.units)
    except (OSError, ValueError, KeyError) as e:  # recorded, not fatal: the run itself checks
      norm["error"] = str(e)
  return {"bands": bands, "normalization": norm}
