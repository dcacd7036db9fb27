"""`sen1floods11_seg`: Sen1Floods11 hand-labelled chips whole, for water segmentation
(data_pipelines.sen1floods11): cube [13, 512, 512] L1C, mask -1 no data / 0 land / 1 water.

`data.paths` / `--input`: the chip folder (S2Hand/, LabelHand/); `data.verify_sha256` checks
its SHA256SUMS.txt first.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from data_pipelines import sen1floods11
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block, single_input

LICENCE = ("Sen1Floods11 (Bonafilia et al. 2020): public, no licence file stated; contains "
           "modified Copernicus Sentinel data")


def _records(cfg) -> list[dict[str, Any]]:
  return sen1floods11.chip_records(cfg.paths, verify_sha256=bool(cfg.get("verify_sha256")))


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  root = single_input("sen1floods11_seg", inputs)
  items = ingest.dense_items("sen1floods11_seg", root, sen1floods11.chip_ids(root),
                             functools.partial(sen1floods11.chip_record, root), **options)
  return items, label_block("mask", sen1floods11.CLASS_NAMES, ignore_value=-1)


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  return {"store_dtype": flags["dtype"], "verify_sha256": flags["verify_sha256"]}


SOURCE = DataSource(
    name="sen1floods11_seg", kind="dense",
    description="Sen1Floods11 chips whole, land / water masks",
    record_keys=BASE_KEYS + ("mask", "crs", "bounds", "source"),
    class_names=sen1floods11.CLASS_NAMES, licence=LICENCE, records=_records,
    ingest_items=_ingest_items, ingest_options=_ingest_options)
