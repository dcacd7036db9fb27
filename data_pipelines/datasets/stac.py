"""`stac`: Sentinel-2 L2A/L1C STAC items (a static catalog, an ItemCollection, a
STAC-GeoParquet file or a STAC API search URL) whose assets are COGs; one record per
patch_size tile over each item (or per `--points` location), read through windows. Cloud and
no-data tiles (SCL) are skipped and counted in the manifest's "labels" block under "stac".
Read only through `ingest`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from data_pipelines.datasets import _flags
from data_pipelines.datasets.core import BASE_KEYS, DataSource, label_block

LICENCE = "Copernicus Sentinel data (free and open; see the catalog's licence)"


def _ingest_items(inputs: Sequence[str], options: dict[str, Any]):
  from data_pipelines import stac  # pylint: disable=g-import-not-at-top
  items, counts = stac.stac_items(inputs, **options)
  return items, label_block(None, stac=counts)


def _int_list(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
  if text is None:
    return default
  return tuple(int(v) for v in text.split(",") if v.strip())


def _ingest_options(flags: dict[str, Any]) -> dict[str, Any]:
  from data_pipelines import stac  # pylint: disable=g-import-not-at-top
  search = flags.get("stac_search")
  return {"bands": flags.get("bands") or "spectralgpt",
          "patch_size": int(flags.get("patch_size") or 128), "stride": flags.get("stride"),
          "points": flags.get("points"), "search": json.loads(search) if search else None,
          "max_items": flags.get("max_items"),
          "mask_classes": _int_list(flags.get("mask_classes"), stac.DEFAULT_MASK_CLASSES),
          "max_masked": float(flags.get("max_masked") or 0.0),
          "resampling": flags.get("band_resampling") or "bicubic",
          "skip_bad_items": bool(flags.get("skip_bad")), **_flags.common(flags),
          "store_dtype": flags.get("dtype") or "uint16"}


SOURCE = DataSource(
    name="stac", kind="ingest",
    description="Sentinel-2 STAC items with COG assets, tiled by windowed reads (ingest only)",
    record_keys=BASE_KEYS + ("item_id", "product_id", "crs", "bounds", "date", "source",
                             "radio_add_offset"),
    licence=LICENCE, ingest_items=_ingest_items, ingest_options=_ingest_options)
