"""The `eurosat` source on the real EuroSAT-MS files (shared/data/eurosat_ms_subset, or
$SPECTRALGPT_EUROSAT_DATA): labels from the folders, bands by name, pixels as rasterio reads
them, checksums, ingest to shards with the licence, and the seeded split files."""

import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from data_pipelines import config, pipeline, schema, splits
from data_pipelines.datasets import eurosat
from data_pipelines.errors import BadInputError, ChecksumError
from spectralgpt_jax.cli import ingest as ingest_cli

REPO = pathlib.Path(__file__).resolve().parents[2]
ROOT = pathlib.Path(os.environ.get("SPECTRALGPT_EUROSAT_DATA",
                                   REPO.parent / "shared" / "data" / "eurosat_ms_subset"))
SPLITS = REPO / "configs" / "eval" / "splits"
# The standard EuroSAT class order (alphabetical; the dataset's README and tfds agree).
CLASSES = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
           "PermanentCrop", "Residential", "River", "SeaLake"]
# File planes are B01..B12 then B8A; the model's 12 bands are B01..B08, B8A, B09, B11, B12.
MODEL_PLANES = [0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 10, 11]


@pytest.fixture(scope="module")
def root():
  pytest.importorskip("rasterio")
  if not (ROOT / "SHA256SUMS.txt").exists():
    pytest.skip(f"EuroSAT-MS subset not found at {ROOT} (set SPECTRALGPT_EUROSAT_DATA)")
  return ROOT


def _rasterio_planes(path):
  import rasterio
  with rasterio.open(path) as src:
    return src.read().astype(np.float32)


def _cfg(root, **kw):
  c = config.default_data_config()
  c.update(source="eurosat", paths=str(root), label_type="single", num_classes=10,
           normalization="none", image_size=64, eval_crop_pct=1.0, train=False,
           shuffle=False, drop_remainder=False, num_epochs=1, with_keys=True, batch_size=16)
  c.update(kw)
  return c


def _all(cfg):
  batches = list(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_files_labels_and_pixels_by_band_name(root):
  files = eurosat.list_files(str(root))
  assert len(files) == 200
  assert eurosat.SOURCE.class_names == tuple(CLASSES)
  got = _all(_cfg(root, split_file=str(SPLITS / "eurosat_subset_test.txt")))
  assert len(got["key"]) == 60
  for key, label in zip(got["key"].astype(str), got["label"]):
    assert CLASSES[int(label)] == pathlib.Path(key).parent.name
  assert np.bincount(got["label"], minlength=10).tolist() == [6] * 10
  for j in (0, 17, 39):   # a few pixels against rasterio directly
    planes = _rasterio_planes(got["key"][j])
    np.testing.assert_array_equal(got["cube"][j], planes[MODEL_PLANES])
  assert got["cube"].shape[1:] == (12, 64, 64)
  # B10 is dropped by name, as for the other 13-band sources; asking for it keeps it.
  b10 = _all(_cfg(root, bands="B10,B8A", split_file=str(SPLITS / "eurosat_subset_test.txt")))
  planes = _rasterio_planes(b10["key"][5])
  np.testing.assert_array_equal(b10["cube"][5], planes[[9, 12]])
  assert 5 < planes[9].mean() < 50        # cirrus: a few DN (PROVENANCE: mean ~12)


def test_ingest_cli_verifies_sums_and_records_the_licence(root, tmp_path, capsys):
  out = tmp_path / "shards"
  assert ingest_cli.main(["--source", "eurosat", "--input", str(root), "--out", str(out),
                          "--shards", "2"]) == 0
  capsys.readouterr()
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["num_records"] == 200 and manifest["source_type"] == "eurosat"
  assert manifest["labels"]["class_names"] == CLASSES and manifest["labels"]["type"] == "single"
  assert "MIT" in manifest["licence"]
  assert manifest["bands"] == list(schema.EUROSAT_BANDS)
  c = _cfg(out, source="tfrecord", split_file=str(SPLITS / "eurosat_subset_test.txt"))
  got = _all(c)
  assert len(got["key"]) == 60
  j = int(np.argsort(got["key"])[3])
  np.testing.assert_array_equal(got["cube"][j], _rasterio_planes(got["key"][j])[MODEL_PLANES])
  # An altered file is refused by name before anything is written.
  copy = tmp_path / "copy"
  shutil.copytree(root / "River", copy / "River")
  sums = [l for l in (root / "SHA256SUMS.txt").read_text().splitlines() if "River/" in l]
  (copy / "SHA256SUMS.txt").write_text("\n".join(sums) + "\n")
  eurosat.verify(str(copy))
  victim = copy / "River" / "River_3.tif"
  data = bytearray(victim.read_bytes())
  data[-1] ^= 1
  victim.write_bytes(bytes(data))
  with pytest.raises(ChecksumError, match="River_3.tif"):
    eurosat.verify(str(copy))
  assert ingest_cli.main(["--source", "eurosat", "--input", str(copy), "--out",
                          str(tmp_path / "bad"), "--shards", "1"]) == 1
  assert "River_3.tif" in capsys.readouterr().err


def test_split_files_are_the_seeded_per_class_split(root):
  ids = [splits.example_id(p) for p in eurosat.list_files(str(root))]
  parts = eurosat.split_ids(ids, seed=0)
  seen = set()
  for name in eurosat.SPLITS:
    listed = splits.read_split_file(str(SPLITS / f"eurosat_subset_{name}.txt"))
    assert listed == set(parts[name])
    assert not listed & seen
    seen |= listed
    per_class = {c: sum(i.startswith(f"{c}_") for i in listed) for c in CLASSES}
    assert set(per_class.values()) == {{"train": 14, "test": 6}[name]}
  assert seen == set(ids)
  assert eurosat.split_ids(list(reversed(ids)), seed=0) == parts   # order of ids irrelevant
  assert eurosat.split_ids(ids, seed=1)["test"] != parts["test"]


def test_ingest_keeps_only_the_split_files(root, tmp_path, capsys):
  out = tmp_path / "test_split"
  assert ingest_cli.main(["--source", "eurosat", "--input", str(root), "--out", str(out),
                          "--shards", "1", "--split_file",
                          str(SPLITS / "eurosat_subset_test.txt")]) == 0
  capsys.readouterr()
  got = _all(_cfg(out, source="tfrecord"))
  listed = splits.read_split_file(str(SPLITS / "eurosat_subset_test.txt"))
  assert {splits.example_id(k) for k in got["key"].astype(str)} == set(listed)
  assert len(got["key"]) == 60


def test_misplaced_files_are_refused_by_name(tmp_path):
  (tmp_path / "Forest").mkdir()
  (tmp_path / "Forest" / "River_1.tif").write_bytes(b"II*\0")
  with pytest.raises(BadInputError, match="River_1.tif.*its class 'Forest'"):
    eurosat.list_files(str(tmp_path))
  (tmp_path / "Forest" / "River_1.tif").unlink()
  (tmp_path / "Lake").mkdir()
  (tmp_path / "Lake" / "Lake_1.tif").write_bytes(b"II*\0")
  with pytest.raises(BadInputError, match="'Lake' is not a EuroSAT class"):
    eurosat.list_files(str(tmp_path))


def test_split_file_listing_an_unknown_id_is_refused_by_name(root, tmp_path, capsys):
  split = tmp_path / "split.txt"
  split.write_text("Forest/Forest_1.tif\nForest/Forest_999.tif\n")
  assert ingest_cli.main(["--source", "eurosat", "--input", str(root), "--out",
                          str(tmp_path / "out"), "--shards", "1", "--split_file",
                          str(split)]) == 1
  err = capsys.readouterr().err
  assert "split.txt" in err and "Forest_999" in err
  assert not (tmp_path / "out" / "manifest.json").exists()
