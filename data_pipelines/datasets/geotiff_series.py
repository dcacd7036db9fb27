"""`geotiff_series`: one folder per example holding one multi-band GeoTIFF per date (dates
from TIFFTAG_DATETIME or the file name); cube [T, C, H, W]. Read only through `ingest`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from data_pipelines.datasets import _flags
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  from data_pipelines import ingest  # pylint: disable=g-import-not-at-top
  return ingest.geotiff_series_items(inputs, **options), label_block(None)


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  return {"bands": flags["bands"], "expect_shape": _flags.expect_shape(flags),
          "expect_crs": flags["expect_crs"], "num_dates": flags["dates"],
          **_flags.common(flags)}


SOURCE = DataSource(
    name="geotiff_series", kind="ingest",
    description="per-date GeoTIFF folders -> time series [T, C, H, W] (ingest only)",
    record_keys=BASE_KEYS + ("dates", "date", "crs", "bounds", "source"), labelled=False,
    ingest_items=_ingest_items, ingest_options=_ingest_options)
