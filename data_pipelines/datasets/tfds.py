"""`tfds`: a prepared (array_record) tfds dataset, "eurosat/all" or "bigearthnet/all".

Own block `config.data.tfds`: name, split (e.g. "train[:90%]"), data_dir ("" = tfds's),
nomenclature (bigearthnet labels: "bigearthnet19" | "bigearthnet43"). Ingest: `--input` is
the one dataset name, `--split`, `--data_dir`, `--labels` (the nomenclature).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections

from data_pipelines.datasets import _flags
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block, single_input


def config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = "eurosat/all"          # "eurosat/all" or "bigearthnet/all"
  c.split = "train"               # tfds split, e.g. "train[:90%]"
  c.data_dir = ""                 # tfds data_dir ("" = tfds default)
  c.nomenclature = "bigearthnet19"  # bigearthnet labels: "bigearthnet19" | "bigearthnet43"
  #                                   (shards keep the nomenclature chosen at ingest)
  return c


def label_info(name: str, nomenclature: str) -> dict[str, Any]:
  """The labels of tfds dataset `name`: EuroSAT's 10 classes or a BigEarthNet nomenclature."""
  from data_pipelines import labels  # pylint: disable=g-import-not-at-top  # numpy, on use
  if name.startswith("eurosat"):
    return label_block("single", labels.EUROSAT_CLASSES)
  return label_block("multi", labels.NOMENCLATURES[nomenclature], nomenclature=nomenclature)


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  name = single_input("tfds", inputs, "one dataset name")
  return (ingest.tfds_items(name, **options),
          label_info(name, options.get("nomenclature", "bigearthnet19")))


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  return {"split": flags["split"], "data_dir": flags["data_dir"],
          "nomenclature": flags["labels"], **_flags.common(flags)}


SOURCE = DataSource(
    name="tfds", kind="tfds",
    description="prepared tfds eurosat/all or bigearthnet/all (config.data.tfds.*)",
    record_keys=BASE_KEYS + ("label", "labels", "num_classes", "label_names", "source"),
    config=config, ingest_items=_ingest_items, ingest_options=_ingest_options,
    fingerprint=lambda cfg: None)
