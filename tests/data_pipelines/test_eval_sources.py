"""Evaluation data sources: Sen1Floods11 tiles, split files, tfds nomenclatures and the
official EuroSAT band drop (tfds mocked with tfds.testing.mock_data)."""

import os
import pathlib

import numpy as np
import pytest

from data_pipelines import config, ingest, pipeline, schema, splits

REPO = pathlib.Path(__file__).resolve().parents[2]
SPLITS = REPO / "configs" / "eval" / "splits"
FLOOD = pathlib.Path(os.environ.get("SPECTRALGPT_FLOOD_DATA",
                                    REPO.parent / "shared" / "data" / "sen1floods11_s2_chip"))


@pytest.fixture(scope="module")
def flood_dir():
  pytest.importorskip("rasterio")
  if not (FLOOD / "SHA256SUMS.txt").exists():
    pytest.skip(f"Sen1Floods11 chip not found at {FLOOD} (set SPECTRALGPT_FLOOD_DATA)")
  return FLOOD


def _s(v):
  return v.decode() if isinstance(v, bytes) else str(v)


def _cfg(**kw):
  c = config.default_data_config()
  c.train, c.num_epochs, c.drop_remainder, c.with_keys = False, 1, False, True
  c.update(kw)
  return c


def _all(cfg):
  batches = list(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_split_ids_match_keys(tmp_path):
  f = tmp_path / "s.txt"
  f.write_text("# comment\ntif/AnnualCrop/AnnualCrop_1.tif 0\n\nS2A_MSIL2A_x_1_2\n")
  ids = splits.read_split_file(str(f))
  assert ids == {"AnnualCrop_1", "S2A_MSIL2A_x_1_2"}
  keep = splits.InSplit(ids)
  assert keep({"filename": b"AnnualCrop_1.tif"}) and keep({"key": "/d/ben/S2A_MSIL2A_x_1_2"})
  assert not keep({"key": "AnnualCrop_10.tif"})


def test_flood_tiles_labels_and_splits(flood_dir):
  from data_pipelines import sen1floods11
  recs = sen1floods11.tile_records(flood_dir, verify_sha256=True)
  assert len(recs) == 16 and recs[0]["cube"].shape == (13, 128, 128)
  assert recs[0]["bands"] == list(schema.L1C_BANDS)
  shares = [r["water_share"] for r in recs]
  assert [r["label"] for r in recs] == [int(s > 0.25) for s in shares]
  assert 0.2 < np.mean(shares) < 0.35   # PROVENANCE: about 27% water
  three = sen1floods11.tile_records(flood_dir, thresholds=(0.1, 0.5))
  assert [r["label"] for r in three] == [int(s > 0.1) + int(s > 0.5) for s in shares]
  tr = _all(_cfg(source="sen1floods11_tiles", paths=str(flood_dir), label_type="single",
                 num_classes=2, image_size=64, batch_size=5, normalization="minmax",
                 split_file=str(SPLITS / "sen1floods11_chip_train.txt")))
  te = _all(_cfg(source="sen1floods11_tiles", paths=str(flood_dir), label_type="single",
                 num_classes=2, image_size=64, batch_size=5, normalization="minmax",
                 split_file=str(SPLITS / "sen1floods11_chip_test.txt")))
  assert tr["cube"].shape == (12, 12, 64, 64) and te["cube"].shape == (4, 12, 64, 64)
  assert not set(tr["key"]) & set(te["key"])
  by_key = {r["key"]: r["label"] for r in recs}
  assert list(te["label"]) == [by_key[k] for k in te["key"]] and set(te["label"]) == {0, 1}


def test_split_file_filters_shards(ben_dir):
  te = _all(_cfg(paths=ben_dir, label_type="multi", num_classes=19, image_size=32,
                 batch_size=4, split_file=str(SPLITS / "bigearthnet_example_test.txt")))
  assert sorted(splits.example_id(k) for k in te["key"]) == sorted(
      splits.read_split_file(str(SPLITS / "bigearthnet_example_test.txt")))


def test_tfds_eurosat_split_and_official_band_drop(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=30):
    src = tfds.data_source("eurosat/all", split="train")
    # mock file names are random words, some with spaces (real ones have none)
    pick = [i for i in range(30) if " " not in _s(src[i]["filename"])][:3]
    names = [_s(src[i]["filename"]) for i in pick]
    assert len(pick) == 3 and len({_s(src[i]["filename"]) for i in range(30)}) == 30
    (tmp_path / "split.txt").write_text("".join(f"tif/x/{n} 3\n" for n in names))
    base = dict(source="tfds", tfds={"name": "eurosat/all"}, label_type="single", batch_size=4,
                normalization="none", image_size=64, eval_crop_pct=1.0,
                split_file=str(tmp_path / "split.txt"))
    got = _all(_cfg(**base))
    drop = _all(_cfg(**base, bands="eurosat_official_drop10"))
    assert sorted(got["key"]) == sorted(names)
    raw = {_s(src[i]["filename"]): src[i]["sentinel2"] for i in pick}
    for j, k in enumerate(got["key"]):
      planes = raw[k].transpose(2, 0, 1).astype(np.float32)
      np.testing.assert_allclose(got["cube"][j], planes[[0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 10, 11]])
      np.testing.assert_allclose(drop["cube"][j], np.delete(planes, 10, axis=0))


def test_tfds_bigearthnet_nomenclatures():
  tfds = pytest.importorskip("tensorflow_datasets")
  from data_pipelines import labels
  with tfds.testing.mock_data(num_examples=4):
    base = dict(source="tfds", label_type="multi", batch_size=4, image_size=32)
    b19 = _all(_cfg(**base, num_classes=19, tfds={"name": "bigearthnet/all"}))
    b43 = _all(_cfg(**base, num_classes=43, tfds={"name": "bigearthnet/all",
                                                  "nomenclature": "bigearthnet43"}))
    src = tfds.data_source("bigearthnet/all", split="train")
    names = tfds.builder("bigearthnet/all").info.features["labels"].feature.names
  for i in range(4):
    want = [names[j] for j in src[i]["labels"]]
    np.testing.assert_array_equal(
        b43["label"][i], labels.multi_hot(labels.bigearthnet_indices(want, "bigearthnet43"), 43))
    np.testing.assert_array_equal(
        b19["label"][i], labels.multi_hot(labels.bigearthnet_indices(want, "bigearthnet19"), 19))
