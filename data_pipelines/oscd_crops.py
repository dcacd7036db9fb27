"""Unlabelled crops of OSCD cities for self-supervised pretraining (`make demo`).

Each date of each city (data_pipelines/oscd.load_city: 12 bands in SPECTRALGPT_BANDS order,
DN, 20 m / 60 m bands resampled onto the 10 m grid) is cut into non-overlapping `size` x
`size` windows from the top left (the partial border is dropped). Records: cube uint16
[C, size, size], bands, key `<city>/<date>/<row>_<col>`; no change mask (pretraining only).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines import schema
from data_pipelines.shard_writer import Item


def crop_origins(height: int, width: int, size: int) -> list[tuple[int, int]]:
  """Top-left corners of the whole `size` windows of an image, row-major."""
  return [(r, c) for r in range(0, height - size + 1, size)
          for c in range(0, width - size + 1, size)]


def city_crops(root: str, city: str, size: int) -> list[dict[str, Any]]:
  """Crop records of both dates of `city`."""
  from data_pipelines import oscd  # pylint: disable=g-import-not-at-top
  rec = oscd.load_city(root, city, bands=schema.SPECTRALGPT_BANDS)
  out = []
  for cube, date in ((rec["cube"], rec["date"]), (rec["cube2"], rec["date2"])):
    for r, c in crop_origins(cube.shape[-2], cube.shape[-1], size):
      window = np.clip(np.rint(cube[:, r:r + size, c:c + size]), 0, 65535).astype(np.uint16)
      out.append({"cube": window, "bands": list(rec["bands"]), "key": f"{city}/{date}/{r}_{c}",
                  "source": rec["source"], "date": date})
  return out


def _load(records_of_city, index: int) -> dict[str, Any]:
  return records_of_city()[index]


def crop_items(root: str, cities: Sequence[str], size: int = 96) -> list[Item]:
  """One item per crop of `cities` (each city is read once, on its first crop)."""
  items = []
  for city in cities:
    records = functools.lru_cache(maxsize=1)(functools.partial(city_crops, root, city, size))
    for i in range(len(records())):
      items.append(Item(f"oscd:{city}:{i}", functools.partial(_load, records, i)))
  return items
