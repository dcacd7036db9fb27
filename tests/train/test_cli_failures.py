"""Every command ends an expected failure with one line naming the file or field (exit != 0);
the traceback goes to a file named on that line, or to stderr with --verbose."""

import os
import subprocess
import sys

import pytest

import train_util
from spectralgpt_jax.cli import _failures

CONFIG = os.path.join(train_util.REPO, "configs/pretrain/tiny_s2.py")


def test_helper_turns_expected_failures_into_one_line(capsys):
  def boom(argv):
    raise FileNotFoundError(f"/data/x.tif: no such file ({argv})")
  assert _failures.run("embed", boom, ["--a"]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("embed failed: /data/x.tif: no such file")
  assert "[check the path]" in err[0]
  path = err[0].split("(traceback: ")[1].split(";")[0]
  assert "FileNotFoundError" in open(path).read()
  os.remove(path)
  assert _failures.run("embed", boom, ["--verbose"]) == 1
  err = capsys.readouterr().err
  assert "Traceback" in err and err.strip().splitlines()[-1].startswith("embed failed:")


def test_helper_reports_bugs_with_their_traceback(capsys):
  def bug(argv):
    raise TypeError("oops")
  assert _failures.run("train", bug, []) == 1
  err = capsys.readouterr().err
  assert "Traceback" in err and "internal error" in err.strip().splitlines()[-1]


def _train(tmp_path, *extra, config=CONFIG + ":synthetic,size=32", env=None):
  cmd = [sys.executable, "-m", "spectralgpt_jax", "train", "--config", config,
         "--workdir", str(tmp_path / "w"), "--config.total_steps=2", *extra]
  return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("extra, text", [
    (["--config.totl_steps=5"], "totl_steps"),
    (["--config.model.name=nope"], "unknown model 'nope'"),
    (["--config.data.source=tfrecord", "--config.data.paths=/nonexistent/shards"],
     "/nonexistent/shards"),
])
def test_train_bad_config_is_one_line(tmp_path, jax_cache_dir, extra, text):
  res = _train(tmp_path, *extra, env=train_util.subprocess_env(jax_cache_dir, devices=1))
  assert res.returncode != 0
  last = res.stderr.strip().splitlines()[-1]
  assert last.startswith("train failed:") and text in last, res.stderr[-2000:]
  assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_train_on_a_corrupt_shard_ends_with_the_error(tmp_path, jax_cache_dir):
  sys.path.insert(0, os.path.join(train_util.REPO, "tests", "data_pipelines"))
  import dp_synth  # pylint: disable=import-outside-toplevel
  from data_pipelines import tfrecord  # pylint: disable=import-outside-toplevel
  ds = tmp_path / "ds"
  dp_synth.write_dataset(ds, n=8, shards=2, size=32)
  shard = sorted(ds.glob("*.tfrecord"))[0]
  data = bytearray(shard.read_bytes())
  off = [o for o, _ in tfrecord.iter_records(shard)][1]
  data[off + 40] ^= 0xFF
  shard.write_bytes(bytes(data))
  res = _train(tmp_path, f"--config.data.paths={ds}", "--config.data.num_workers=0",
               "--config.batch_size=2", "--config.data.batch_size=2",
               config=CONFIG + ":size=32",
               env=train_util.subprocess_env(jax_cache_dir, devices=1))
  assert res.returncode == 1, res.stderr[-3000:]
  last = res.stderr.strip().splitlines()[-1]
  assert last.startswith("train failed: corrupt record in shard " + str(shard)), last
  assert f"byte offset {off}" in last and "skip_corrupt" in last
