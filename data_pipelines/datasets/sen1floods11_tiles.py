"""`sen1floods11_tiles`: Sen1Floods11 chips cut into labelled tiles, read into memory
(data_pipelines.sen1floods11.tile_records). A tile's label is how many of
`water_share_thresholds` its share of water exceeds.

Own block `config.data.sen1floods11_tiles`: tile_size (512 px chips -> 16 tiles of 128),
water_share_thresholds ((0.25,): 2 classes; (0.1, 0.5): 3 share bins).
"""

from __future__ import annotations

from typing import Any

import ml_collections

from data_pipelines import sen1floods11
from data_pipelines.datasets.core import BASE_KEYS, DataSource
from data_pipelines.datasets.sen1floods11_seg import LICENCE


def config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.tile_size = 128                   # 512 px chips -> 16 tiles
  c.water_share_thresholds = (0.25,)  # (0.25,): 2 classes; (0.1, 0.5): 3 share bins
  return c


def _records(cfg) -> list[dict[str, Any]]:
  block = cfg.sen1floods11_tiles
  return sen1floods11.tile_records(cfg.paths, tile_size=int(block.tile_size),
                                   thresholds=tuple(block.water_share_thresholds),
                                   verify_sha256=bool(cfg.get("verify_sha256")))


SOURCE = DataSource(
    name="sen1floods11_tiles", kind="records",
    description="Sen1Floods11 chips cut into tiles labelled by their water share",
    record_keys=BASE_KEYS + ("label", "num_classes", "mask", "crs", "source"),
    licence=LICENCE, config=config, records=_records)
