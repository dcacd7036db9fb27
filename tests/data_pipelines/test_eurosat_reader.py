"""data_pipelines/eurosat.py on the shipped EuroSAT-MS subset, checked against rasterio's own
read of the files (band planes picked here by hand from the documented file order)."""

import json
import os
import pathlib

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from data_pipelines import eurosat, ingest, splits  # noqa: E402
from data_pipelines.errors import BadInputError  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("SPECTRALGPT_EUROSAT_DATA",
                                   REPO.parent / "shared" / "data" / "eurosat_ms_subset"))
SPLITS = REPO / "configs" / "eval" / "splits"
# File planes B01..B12 (0..11, B10 = 9) then B8A (12) -> model order B01..B08, B8A, B09, B11, B12.
FILE_INDEX_OF_MODEL_BAND = [0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 10, 11]


@pytest.fixture(scope="module")
def root():
  if not (DATA / "SHA256SUMS.txt").exists():
    pytest.skip(f"EuroSAT-MS subset not found at {DATA} (set SPECTRALGPT_EUROSAT_DATA)")
  return DATA


def test_reader_matches_rasterio(root):
  files = eurosat.list_files(root)
  assert list(files) == list(eurosat.CLASSES)
  assert all(len(v) == 20 for v in files.values())
  assert [f.name for f in files["Forest"][:3]] == ["Forest_1.tif", "Forest_2.tif", "Forest_3.tif"]
  for name in ("AnnualCrop", "River", "SeaLake"):
    path = files[name][6]
    cube, label = eurosat.read_file(path)
    with rasterio.open(path) as src:
      raw = src.read()
    assert raw.shape == (13, 64, 64) and raw.dtype == np.uint16
    assert cube.dtype == np.float32 and cube.shape == (12, 64, 64)
    np.testing.assert_array_equal(cube, raw[FILE_INDEX_OF_MODEL_BAND].astype(np.float32))
    assert label == sorted(eurosat.CLASSES).index(name)
  # B10 (cirrus, ~12 DN in this subset) is the plane left out
  assert raw[9].mean() < 100 and all(cube[i].mean() > 100 for i in range(12))


def test_sha256_and_bad_folder(root, tmp_path):
  assert eurosat.verify(root) == 202   # the 200 tifs, manifest.csv and PROVENANCE.md
  (tmp_path / "Meadow").mkdir()
  with pytest.raises(BadInputError, match="Meadow"):
    eurosat.list_files(tmp_path)


def test_ingest_split_file(root, tmp_path):
  test_ids = splits.read_split_file(str(SPLITS / "eurosat_subset_test.txt"))
  train_ids = splits.read_split_file(str(SPLITS / "eurosat_subset_train.txt"))
  assert len(test_ids) == 60 and len(train_ids) == 140 and not test_ids & train_ids
  assert {i.rsplit("_", 1)[0] for i in test_ids} == set(eurosat.CLASSES)
  out = tmp_path / "shards"
  manifest = ingest.ingest("eurosat", [str(root)], out, num_shards=1,
                           split_file=str(SPLITS / "eurosat_subset_test.txt"))
  assert manifest["num_records"] == 60
  stored = json.loads((out / "manifest.json").read_text())
  assert stored["labels"]["class_names"] == list(eurosat.CLASSES)
  items = eurosat.items([str(root)], split_file=str(SPLITS / "eurosat_subset_test.txt"))
  assert {splits.example_id(i.key) for i in items} == test_ids
  rec = items[0].load()
  cube, label = eurosat.read_file(root / rec["key"])
  assert rec["cube"].dtype == np.uint16 and rec["label"] == label
  np.testing.assert_array_equal(rec["cube"].astype(np.float32), cube)
