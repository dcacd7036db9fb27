"""Dense evaluation in two local processes (`evaluate --distributed`, jax.distributed, one CPU
device each) gives the metrics, confusion matrix and saved maps of one process: each process
scores and writes its own test images and the counts are added once
(ConfusionAccumulator.sum_across_processes and multihost over two processes)."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import portpicker
import pytest

from configs.eval import oscd as oscd_config

pytestmark = pytest.mark.slow
rasterio = pytest.importorskip("rasterio")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CITIES = ("bercy", "paris", "rennes")   # three images: process 0 scores two, process 1 one
CONFIG_FILE = """import json
import ml_collections

def get_config():
  with open({path!r}) as f:
    return ml_collections.ConfigDict(json.load(f))
"""


def _config(root) -> ml_collections.ConfigDict:
  """The tiny OSCD change detector, one training step at learning rate 1e-30 (the step moves
  no parameter by a float32 ulp that matters): both runs score the same initial parameters,
  although two training processes read other crops than one."""
  c = oscd_config.get_config("tiny,steps=1")
  c.root = str(root)
  c.evals.oscd.train.optim.lr = 1e-30
  c.evals.oscd.test_data.oscd.cities = ",".join(CITIES)
  return ml_collections.ConfigDict(json.loads(c.to_json()))


def _maps(folder):
  out = {}
  for city in CITIES:
    with rasterio.open(folder / "predictions" / f"{city}.tif") as src:
      out[city] = src.read(1)
    with np.load(folder / "predictions" / f"{city}_scores.npz") as z:
      out[city + "_scores"] = z["scores"]
    assert (folder / "panels" / f"{city}.png").is_file()
  return out


def _evaluate(config_py, workdir, devices: int, processes: int, env) -> list[str]:
  """`evaluate` in `processes` local processes of `devices` CPU devices each; their stderr."""
  env = dict(env, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  flags = []
  if processes > 1:
    port = portpicker.pick_unused_port()
    flags = ["--distributed", f"--coordinator_address=127.0.0.1:{port}",
             f"--num_processes={processes}"]
  procs = [subprocess.Popen(
      [sys.executable, "-m", "spectralgpt_jax", "evaluate", "--config", str(config_py),
       "--workdir", str(workdir)] + flags + ([f"--process_id={i}"] if flags else []),
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(processes)]
  outs = [p.communicate(timeout=900) for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(e[-3000:] for _, e in outs)
  return [e for _, e in outs]


def test_two_processes_give_one_process_dense_metrics_and_maps(oscd_root, tmp_path):
  config_json = tmp_path / "config.json"
  config_json.write_text(_config(oscd_root).to_json())
  config_py = tmp_path / "config.py"
  config_py.write_text(CONFIG_FILE.format(path=str(config_json)))
  env = dict(os.environ, SPECTRALGPT_JAX_COMPILATION_CACHE=str(tmp_path / "jax_cache"),
             PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
  # The same two devices (the same tile batch per device: the same float rounding) in one
  # process, then in two.
  one, multi = tmp_path / "one" / "point", tmp_path / "two" / "point"
  _evaluate(config_py, one, devices=2, processes=1, env=env)
  logs = _evaluate(config_py, multi, devices=1, processes=2, env=env)
  assert "process 1/2, 1 local / 2 global devices" in logs[1]
  single = json.loads((one / "result.json").read_text())["metrics"]

  result = json.loads((multi / "result.json").read_text())
  assert result["metrics"] == pytest.approx(single, rel=1e-6, abs=1e-9, nan_ok=True)
  report = json.loads((one / "oscd" / "metrics.json").read_text())
  two = json.loads((multi / "oscd" / "metrics.json").read_text())
  assert two["confusion_matrix"] == report["confusion_matrix"]
  # Counted once: the confusion matrix holds every valid pixel of the three cities once.
  a, b = _maps(one / "oscd"), _maps(multi / "oscd")
  valid = sum(int((a[c] != 255).sum()) for c in CITIES)
  assert np.sum(two["confusion_matrix"]) == valid > 0
  assert single["oscd/official_oscd_tp"] + single["oscd/official_oscd_tn"] > 0
  for key in a:
    if key.endswith("_scores"):
      np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=key)
    else:
      np.testing.assert_array_equal(b[key], a[key], err_msg=key)
