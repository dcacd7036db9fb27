"""`bigearthnet`: BigEarthNet-S2 patch folders (one GeoTIFF per band, labels in the patch's
JSON), multi-label in the BigEarthNet-19 or CORINE-43 nomenclature (`--labels`). Read only
through `ingest` (then as shards, or as the prepared tfds `bigearthnet/all`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block

LICENCE = ("CDLA-Permissive-1.0 (BigEarthNet); contains modified Copernicus Sentinel data")


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  from data_pipelines import labels  # pylint: disable=g-import-not-at-top
  nomenclature = options.get("nomenclature", "bigearthnet19")
  return (ingest.bigearthnet_items(inputs, **options),
          label_block("multi", labels.NOMENCLATURES[nomenclature], nomenclature=nomenclature))


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  return {"resampling": flags["resampling"], "nomenclature": flags["labels"],
          "harmonize": not flags["no_harmonize"], "store_dtype": flags["dtype"] or "uint16",
          "verify_sha256": flags["verify_sha256"]}


SOURCE = DataSource(
    name="bigearthnet", kind="ingest",
    description="BigEarthNet-S2 patch folders, multi-label (ingest only)",
    record_keys=BASE_KEYS + ("labels", "num_classes", "label_names", "product_id", "crs",
                             "bounds", "date", "source", "radio_add_offset"),
    licence=LICENCE, ingest_items=_ingest_items, ingest_options=_ingest_options)
