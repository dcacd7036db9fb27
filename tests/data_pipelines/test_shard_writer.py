"""Shard writing: manifest, balance, shuffling, atomic writes, interruption and resume."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from data_pipelines import example_codec, shard_writer, tfrecord

import dp_synth

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[1]


def _read_all(out) -> dict[str, dict]:
  recs = {}
  for f in sorted(pathlib.Path(out).glob("*.tfrecord")):
    for _, data in tfrecord.iter_records(f):
      r = example_codec.decode_record(data)
      recs[r["key"]] = r
  return recs


def _shard_bytes(out) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(pathlib.Path(out).glob("*.tfrecord"))}


def test_manifest_balance_and_bit_exact_round_trip(synth_dir):
  manifest = json.loads((pathlib.Path(synth_dir) / "manifest.json").read_text())
  counts = [s["records"] for s in manifest["shards"]]
  assert sum(counts) == manifest["num_records"] == 40 and max(counts) - min(counts) <= 1
  assert manifest["bands"] == list(dp_synth.make_record(0)["bands"])
  assert manifest["cube_shapes"] == [[12, 24, 24]] and manifest["dtypes"] == ["<u2"]
  # bands kept by name with their wavelengths (ESA nominal centre / bandwidth, nm)
  nominal = {"B01": (443, 20), "B02": (490, 65), "B8A": (865, 20), "B12": (2190, 180)}
  got = {w["name"]: (w["centre_nm"], w["fwhm_nm"]) for w in manifest["band_wavelengths"]}
  assert [w["name"] for w in manifest["band_wavelengths"]] == manifest["bands"]
  assert all(got[k] == v for k, v in nominal.items() if k in got) and len(got) == 12
  assert manifest["tool"]["name"] and manifest["tool"]["version"]
  st = manifest["stats"]
  allcubes = np.stack([dp_synth.make_record(i)["cube"] for i in range(40)]).astype(float)
  np.testing.assert_allclose(st["mean"], allcubes.mean(axis=(0, 2, 3)))
  np.testing.assert_allclose(st["std"], allcubes.std(axis=(0, 2, 3)))
  np.testing.assert_allclose(st["max"], allcubes.max(axis=(0, 2, 3)))
  recs = _read_all(synth_dir)
  assert len(recs) == 40
  for i in range(40):
    want = dp_synth.make_record(i)
    got = recs[want["key"]]
    for k in ("cube", "mask"):
      assert got[k].dtype == want[k].dtype
      np.testing.assert_array_equal(got[k], want[k])
    assert got["labels"] == want["labels"] and got["label"] == want["label"]
  # Shuffled across shards: shard 0 is not simply the first quarter of the inputs.
  first = [example_codec.decode_record(d)["key"]
           for _, d in tfrecord.iter_records(pathlib.Path(synth_dir) / manifest["shards"][0]["file"])]
  assert sorted(first) != [f"rec-{i:04d}" for i in range(len(first))]


class _Boom(Exception):
  pass


def test_interrupted_run_leaves_no_half_shard_and_resumes_identically(tmp_path):
  clean = tmp_path / "clean"
  dp_synth.write_dataset(clean, n=20, shards=4)
  items = dp_synth.make_items(20)
  victim_key = shard_writer.assign_shards(20, 4, 0)[2][1]   # 2nd record of shard 2

  def explode():
    raise _Boom()
  broken = [shard_writer.Item(it.key, explode) if i == victim_key else it
            for i, it in enumerate(items)]
  out = tmp_path / "resumed"
  with pytest.raises(_Boom):
    shard_writer.write_shards(broken, out, num_shards=4)
  names = sorted(p.name for p in out.iterdir())
  assert "data-00000-of-00004.tfrecord" in names and "data-00001-of-00004.tfrecord" in names
  assert "data-00002-of-00004.tfrecord" not in names and "manifest.json" not in names
  assert not [n for n in names if n.startswith(".tmp")]
  before = (out / "data-00000-of-00004.tfrecord").stat().st_mtime_ns
  shard_writer.write_shards(items, out, num_shards=4)
  assert (out / "data-00000-of-00004.tfrecord").stat().st_mtime_ns == before   # not rewritten
  assert _shard_bytes(out) == _shard_bytes(clean)
  m1 = json.loads((out / "manifest.json").read_text())
  m2 = json.loads((clean / "manifest.json").read_text())
  for k in ("shards", "stats", "num_records", "bands", "plan"):
    assert m1[k] == m2[k]
  assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
  # A different ingestion into the same folder is refused.
  with pytest.raises(FileExistsError):
    shard_writer.write_shards(items[:5], out, num_shards=4)


_CHILD = """
import sys; sys.path.insert(0, {here!r}); sys.path.insert(0, {repo!r})
import dp_synth
dp_synth.write_dataset({out!r}, n=12, shards=3, delay=0.05)
"""


def test_killed_process_mid_shard(tmp_path):
  """SIGKILL while shard 1 is being written: no half shard under a final name."""
  out = tmp_path / "killed"
  code = _CHILD.format(here=str(HERE), repo=str(REPO), out=str(out))
  proc = subprocess.Popen([sys.executable, "-c", code])
  deadline = time.time() + 60
  while time.time() < deadline:
    tmps = list(out.glob(".tmp.data-00001-*")) if out.exists() else []
    if tmps and tmps[0].stat().st_size > 0:
      break
    time.sleep(0.01)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  names = sorted(p.name for p in out.iterdir())
  assert "data-00000-of-00003.tfrecord" in names
  assert "data-00001-of-00003.tfrecord" not in names and "manifest.json" not in names
  # Every shard under a final name is complete and valid.
  for p in out.glob("*.tfrecord"):
    assert len(list(tfrecord.iter_records(p))) == 4
  shard_writer.write_shards(dp_synth.make_items(12), out, num_shards=3)   # resume
  clean = tmp_path / "clean"
  dp_synth.write_dataset(clean, n=12, shards=3)
  assert _shard_bytes(out) == _shard_bytes(clean)
  assert not list(out.glob(".tmp*"))


def test_overwrite_into_a_new_folder_and_over_a_finished_one(tmp_path):
  out = tmp_path / "fresh"
  first = shard_writer.write_shards(dp_synth.make_items(6), out, num_shards=2, overwrite=True)
  assert first["num_records"] == 6 and len(_read_all(out)) == 6
  again = shard_writer.write_shards(dp_synth.make_items(4), out, num_shards=2, overwrite=True)
  assert again["num_records"] == 4 and len(_read_all(out)) == 4
