"""`segmunich`: SegMunich segmentation (data_pipelines.segmunich), 13 classes (0 background),
one record per image of the dataset's split.

`data.paths` / `--input`: the dataset root in its published layout. Own block
`config.data.segmunich`: dataset_split ("train" | "test"; "" = "train"; ingest: `--split`),
channels ("by_name": the 10 bands in their model slots, B08 and B09 filled from the nearest
band; "official_mean_twice": the 10 bands then their per-pixel mean twice, fed positionally
as the official code does).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import ml_collections

from data_pipelines import segmunich
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block, single_input


def config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.dataset_split = ""       # "train" | "test" ("" = "train")
  c.channels = "by_name"     # "by_name" | "official_mean_twice"
  return c


def _records(cfg) -> list[dict[str, Any]]:
  return segmunich.split_records(cfg.paths, cfg.segmunich.dataset_split or "train",
                                 channels=cfg.segmunich.channels)


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  """options: split ("train" | "test"), channels, store_dtype, verify_sha256."""
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  root = single_input("segmunich", inputs)
  options = dict(options)
  split = options.pop("split", "train")
  load = functools.partial(segmunich.load_image, root, split,
                           channels=options.pop("channels", "by_name"))
  return (ingest.dense_items("segmunich", root, segmunich.list_names(root, split), load,
                             **options),
          label_block("mask", segmunich.CLASS_NAMES, ignore_value=-1))


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  return {"split": flags["split"], "channels": flags["channels"],
          "store_dtype": flags["dtype"], "verify_sha256": flags["verify_sha256"]}


SOURCE = DataSource(
    name="segmunich", kind="dense",
    description="SegMunich segmentation, 13 classes",
    record_keys=BASE_KEYS + ("mask", "crs", "bounds", "source"),
    class_names=segmunich.CLASS_NAMES, config=config, records=_records,
    ingest_items=_ingest_items, ingest_options=_ingest_options)
