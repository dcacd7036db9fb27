"""ingest -> shards -> inspect for the dense datasets: records keep mask, cube2 and date2
(real OSCD cities and the real Sen1Floods11 chip; the shards live in pytest's tmp dir)."""

import json
import os
import pathlib

import numpy as np
import pytest

from data_pipelines import example_codec, oscd, schema, sen1floods11, tfrecord
from spectralgpt_jax.cli import ingest as ingest_cli
from spectralgpt_jax.cli import inspect as inspect_cli

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
OSCD = pathlib.Path(os.environ.get("SPECTRALGPT_OSCD_DATA", SHARED / "oscd_s2_subset"))
FLOOD = pathlib.Path(os.environ.get("SPECTRALGPT_FLOOD_DATA", SHARED / "sen1floods11_s2_chip"))


def _need(path):
  pytest.importorskip("rasterio")
  if not (path / "SHA256SUMS.txt").exists():
    pytest.skip(f"{path} not found (set SPECTRALGPT_OSCD_DATA / SPECTRALGPT_FLOOD_DATA)")
  return path


def _records(out):
  manifest = json.loads((out / "manifest.json").read_text())
  return manifest, {rec["key"]: rec for s in manifest["shards"]
                    for _, data in tfrecord.iter_records(out / s["file"])
                    for rec in [example_codec.decode_record(data)]}


def test_oscd_round_trip(tmp_path, capsys):
  root = _need(OSCD)
  out = tmp_path / "oscd"
  assert ingest_cli.main(["--source", "oscd", "--input", str(root), "--cities", "bercy,paris",
                          "--out", str(out), "--shards", "2"]) == 0
  capsys.readouterr()
  manifest, recs = _records(out)
  assert sorted(recs) == ["bercy", "paris"] and manifest["bands"] == list(schema.L1C_BANDS)
  assert manifest["labels"] == {"type": "mask", "class_names": ["no change", "change"],
                                "ignore_value": -1, "num_classes": 2}
  for city, rec in recs.items():
    want = oscd.load_city(root, city, bands=schema.L1C_BANDS)
    for k in ("cube", "cube2", "mask"):
      np.testing.assert_array_equal(rec[k], want[k], err_msg=f"{city} {k}")
    assert (rec["date"], rec["date2"]) == (want["date"], want["date2"])
  assert inspect_cli.main([str(out)]) == 0
  text = capsys.readouterr().out
  assert "masks: 2 records, pixels per class {0: " in text and "ignored 0.00%" in text
  assert "second dates (cube2): 2 records, 2017-08-29 .. 2017-11-07" in text
  assert inspect_cli.main([str(out), "--json"]) == 0
  report = json.loads(capsys.readouterr().out)
  change = sum(int(r["mask"].sum()) for r in recs.values())
  assert report["masks"]["classes"]["1"] == change == 1046 + 458   # PROVENANCE / the tifs
  assert report["second_dates"]["records"] == 2


def test_flood_chip_round_trip(tmp_path, capsys):
  root = _need(FLOOD)
  out = tmp_path / "flood"
  assert ingest_cli.main(["--source", "sen1floods11_seg", "--input", str(root), "--out",
                          str(out), "--shards", "1"]) == 0
  capsys.readouterr()
  manifest, recs = _records(out)
  (rec,) = recs.values()
  want = sen1floods11.chip_record(root, "Spain_7370579")
  np.testing.assert_array_equal(rec["cube"], want["cube"])
  np.testing.assert_array_equal(rec["mask"], want["mask"])
  assert rec["crs"] == "EPSG:4326" and "cube2" not in rec
  assert manifest["labels"]["class_names"] == ["land", "water"]
  assert inspect_cli.main([str(out), "--json"]) == 0
  masks = json.loads(capsys.readouterr().out)["masks"]
  assert masks["pixels"] == 512 * 512 and 0 < masks["ignored_share"] < 0.001
  assert masks["classes"]["1"] == int((want["mask"] == 1).sum())


def test_bad_change_map_fails_ingest_naming_the_file(tmp_path, capsys):
  root = tmp_path / "root"
  (root / oscd.IMAGES_DIR / "x" / "imgs_1").mkdir(parents=True)
  assert ingest_cli.main(["--source", "oscd", "--input", str(root), "--cities", "x",
                          "--out", str(tmp_path / "o"), "--shards", "1"]) == 1
  assert "no change map for city 'x'" in capsys.readouterr().err


def test_oscd_shards_train_on_windows(tmp_path):
  from data_pipelines import config, pipeline
  root = _need(OSCD)
  out = tmp_path / "oscd"
  assert ingest_cli.main(["--source", "oscd", "--input", str(root), "--cities", "bercy,paris",
                          "--out", str(out), "--shards", "2"]) == 0
  cfg = config.default_data_config()
  cfg.update(paths=str(out), crop="window", use_mask=True, use_cube2=True, image_size=48,
             batch_size=4, rot90=True, cycle_length=2, shuffle_window=4)   # whole cities
  batches = [b for b, _ in zip(pipeline.make_pipeline(cfg, process_index=0, process_count=1),
                               range(3))]
  b = batches[0]
  assert b["cube"].shape == b["cube2"].shape == (4, 12, 48, 48)
  assert set(np.unique(np.concatenate([x["mask"] for x in batches]))) == {0, 1}
  assert 0.0 <= b["cube"].min() and b["cube"].max() <= 1.0
  again = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  assert all(np.array_equal(x["cube2"], next(again)["cube2"]) for x in batches)
  cfg.crop = "random"
  with pytest.raises(ValueError, match="data.crop 'random'"):
    next(pipeline.make_pipeline(cfg, process_index=0, process_count=1))
