"""`geotiff`: multi-band GeoTIFFs (files, folders or globs), one example each; read only
through `ingest`. Band names from `--bands` (a band set or comma list) or the files' band
descriptions; labels optionally from the parent folder (`--label_from_dir`, `--classes`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from data_pipelines.datasets import _flags
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  items, classes = ingest.geotiff_items(inputs, **options)
  return items, (label_block("single", classes) if classes is not None else label_block(None))


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  from data_pipelines import labels  # pylint: disable=g-import-not-at-top  # numpy, on use
  classes = None
  if flags.get("classes"):
    name = flags["classes"]
    classes = (labels.NOMENCLATURES[name] if name in labels.NOMENCLATURES
               else tuple(c.strip() for c in name.split(",")))
  return {"bands": flags["bands"], "label_from_dir": flags["label_from_dir"],
          "classes": classes, "expect_shape": _flags.expect_shape(flags),
          "expect_crs": flags["expect_crs"], "sensor": flags.get("sensor") or None,
          **_flags.common(flags)}


SOURCE = DataSource(
    name="geotiff", kind="ingest",
    description="multi-band GeoTIFFs, labels optionally from the parent folder (ingest only)",
    record_keys=BASE_KEYS + ("label", "label_names", "crs", "bounds", "date", "source"),
    ingest_items=_ingest_items, ingest_options=_ingest_options)
