"""OSCD pretraining crops (data_pipelines/oscd_crops.py) against windows cut here from the city
record that data_pipelines/oscd.py reads."""

import os
import pathlib

import numpy as np
import pytest

pytest.importorskip("rasterio")

from data_pipelines import oscd, oscd_crops, schema  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
OSCD = pathlib.Path(os.environ.get("SPECTRALGPT_OSCD_DATA",
                                   REPO.parent / "shared" / "data" / "oscd_s2_subset"))


def test_crop_origins_whole_windows_only():
  assert oscd_crops.crop_origins(200, 130, 96) == [(0, 0), (96, 0)]
  assert oscd_crops.crop_origins(95, 500, 96) == []


def test_city_crops_are_windows_of_both_dates():
  if not (OSCD / "SHA256SUMS.txt").exists():
    pytest.skip(f"OSCD subset not found at {OSCD} (set SPECTRALGPT_OSCD_DATA)")
  city = oscd.city_names(OSCD)[0]
  rec = oscd.load_city(OSCD, city, bands=schema.SPECTRALGPT_BANDS)
  h, w = rec["cube"].shape[-2:]
  crops = oscd_crops.city_crops(str(OSCD), city, 96)
  assert len(crops) == 2 * (h // 96) * (w // 96)
  last = crops[-1]
  r, c = (int(v) for v in last["key"].rsplit("/", 1)[1].split("_"))
  assert last["key"].startswith(f"{city}/{rec['date2']}/") and last["cube"].dtype == np.uint16
  want = np.clip(np.rint(rec["cube2"][:, r:r + 96, c:c + 96]), 0, 65535)
  np.testing.assert_array_equal(last["cube"], want)
  assert last["bands"] == list(schema.SPECTRALGPT_BANDS) and "mask" not in last
  items = oscd_crops.crop_items(str(OSCD), [city], 96)
  assert len(items) == len(crops)
  np.testing.assert_array_equal(items[1].load()["cube"], crops[1]["cube"])
