"""Synthetic Sentinel-2-like records and shard directories for the data pipeline tests."""

from __future__ import annotations

import functools
import time

import numpy as np

from data_pipelines import schema
from data_pipelines import shard_writer


def make_record(i: int, size: int = 24, bands=schema.SPECTRALGPT_BANDS) -> dict:
  """Deterministic record i: uint16 cube whose band b has values ~ 1000*(b+1) + i."""
  rng = np.random.default_rng(i)
  cube = (rng.integers(0, 500, (len(bands), size, size)) +
          1000 * (np.arange(len(bands))[:, None, None] + 1) + i).astype(np.uint16)
  return {"cube": cube, "bands": list(bands), "key": f"rec-{i:04d}", "label": i % 10,
          "labels": sorted({i % 19, (3 * i) % 19}), "num_classes": 19,
          "mask": (rng.integers(0, 5, (size, size))).astype(np.uint8),
          "date": "2021-06-01", "crs": "EPSG:32633", "bounds": [0.0, 0.0, 240.0, 240.0]}


def _load(i: int, size: int, delay: float) -> dict:
  if delay:
    time.sleep(delay)
  return make_record(i, size)


def make_items(n: int, size: int = 24, delay: float = 0.0) -> list[shard_writer.Item]:
  return [shard_writer.Item(f"rec-{i:04d}", functools.partial(_load, i, size, delay))
          for i in range(n)]


def write_dataset(out, n: int = 40, shards: int = 4, size: int = 24, seed: int = 0,
                  delay: float = 0.0) -> dict:
  return shard_writer.write_shards(make_items(n, size, delay), out, num_shards=shards, seed=seed)
