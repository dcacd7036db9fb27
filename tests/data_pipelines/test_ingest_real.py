"""The six real BigEarthNet patches through ingest -> shards -> inspect (CLI)."""

import json
import pathlib
import shutil

import numpy as np
import pytest

from data_pipelines import bigearthnet, example_codec, tfrecord
from spectralgpt_jax.cli import inspect as inspect_cli


def test_records_match_reader_bit_exact(ben_dir, example_dir):
  manifest = json.loads((pathlib.Path(ben_dir) / "manifest.json").read_text())
  assert manifest["num_records"] == 6 and [s["records"] for s in manifest["shards"]] == [3, 3]
  assert manifest["labels"]["num_classes"] == 19
  seen = set()
  for shard in manifest["shards"]:
    for _, data in tfrecord.iter_records(pathlib.Path(ben_dir) / shard["file"]):
      rec = example_codec.decode_record(data)
      cube, meta = bigearthnet.read_bigearthnet_patch(rec["source"])
      assert rec["cube"].dtype == np.uint16
      np.testing.assert_array_equal(rec["cube"], np.rint(cube).astype(np.uint16))
      assert rec["bands"] == meta["bands"] and rec["labels"] == meta["labels19"]
      assert rec["crs"] == meta["crs"] and rec["bounds"] == meta["bounds"]
      assert rec["product_id"] == meta["product_id"] and rec["date"] == meta["date"]
      seen.add(rec["key"])
  assert seen == {p.name for p in bigearthnet.list_bigearthnet_patches(example_dir)}
  # On-the-fly statistics are plausible DN values.
  assert 0 < min(manifest["stats"]["mean"]) and max(manifest["stats"]["max"]) < 20000


def test_inspect_ok(ben_dir, capsys):
  assert inspect_cli.main([ben_dir]) == 0
  out = capsys.readouterr().out
  assert "OK, 6 records in 2 shards" in out and "B01 B02 B03 B04 B05 B06 B07 B08 B8A B09" in out
  assert inspect_cli.main([ben_dir, "--json"]) == 0
  report = json.loads(capsys.readouterr().out)
  assert report["ranges"]["B02"][1] > report["ranges"]["B02"][0] >= 0


def _copy(ben_dir, tmp_path):
  dst = tmp_path / "copy"
  shutil.copytree(ben_dir, dst)
  return dst


def test_inspect_names_shard_and_offset_of_corruption(ben_dir, tmp_path, capsys):
  dst = _copy(ben_dir, tmp_path)
  shard = sorted(dst.glob("*.tfrecord"))[1]
  offsets = [o for o, _ in tfrecord.iter_records(shard)]
  data = bytearray(shard.read_bytes())
  data[offsets[2] + 5000] ^= 0x10
  shard.write_bytes(bytes(data))
  assert inspect_cli.main([str(dst)]) == 1
  err = capsys.readouterr().err
  assert shard.name in err and f"byte offset {offsets[2]}" in err and "CRC" in err


def test_inspect_detects_lost_records_and_missing_shards(ben_dir, tmp_path, capsys):
  dst = _copy(ben_dir, tmp_path)
  shard = sorted(dst.glob("*.tfrecord"))[0]
  offsets = [o for o, _ in tfrecord.iter_records(shard)]
  shard.write_bytes(shard.read_bytes()[:offsets[2]])    # cut on a record boundary
  assert inspect_cli.main([str(dst)]) == 1
  assert "manifest says 3 records, found 2" in capsys.readouterr().err
  shard.unlink()
  assert inspect_cli.main([str(dst)]) == 1
  assert "missing" in capsys.readouterr().err
