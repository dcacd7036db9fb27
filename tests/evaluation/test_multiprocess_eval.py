"""Multi-host evaluation: `evaluate` in two local processes (jax.distributed, one CPU device
each), each reading its share of every split's shards, gives the metrics and predictions of one
process (linear probe and k-NN on the six real BigEarthNet patches)."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import portpicker
import pytest

from spectralgpt_jax import evaluation

pytestmark = pytest.mark.slow
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG_FILE = """import json
import ml_collections

def get_config():
  with open({path!r}) as f:
    return ml_collections.ConfigDict(json.load(f))
"""


@pytest.fixture(scope="module")
def six_shards(example_dir, tmp_path_factory):
  """One patch per shard: train = shards 0-2, test = 3-5, so with two processes one reads two
  patches of each split and the other one (unequal shares)."""
  pytest.importorskip("rasterio")
  from data_pipelines import ingest
  out = tmp_path_factory.mktemp("ben6")
  ingest.ingest("bigearthnet", [str(example_dir)], out, num_shards=6, verify_sha256=True)
  shards = sorted(str(p) for p in out.glob("*.tfrecord"))
  assert len(shards) == 6
  return ",".join(shards[:3]), ",".join(shards[3:])


def test_two_processes_give_one_process_metrics(make_eval_config, six_shards, tmp_path):
  config = make_eval_config()
  for name in ("lin", "nn"):
    config.evals[name].train_data.paths, config.evals[name].test_data.paths = six_shards
  config_json = tmp_path / "config.json"
  config_json.write_text(config.to_json())
  config_py = tmp_path / "config.py"
  config_py.write_text(CONFIG_FILE.format(path=str(config_json)))

  single = evaluation.run_evals(ml_collections.ConfigDict(json.loads(config_json.read_text())),
                                str(tmp_path / "one" / "point"))

  port = portpicker.pick_unused_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
             SPECTRALGPT_JAX_COMPILATION_CACHE=str(tmp_path / "jax_cache"),
             PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
  multi = tmp_path / "two" / "point"
  procs = [subprocess.Popen(
      [sys.executable, "-m", "spectralgpt_jax", "evaluate", "--config", str(config_py),
       "--workdir", str(multi), "--distributed", f"--coordinator_address=127.0.0.1:{port}",
       "--num_processes=2", f"--process_id={i}"],
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(e[-3000:] for _, e in outs)
  assert "process 1/2, 1 local / 2 global devices" in outs[1][1]

  result = json.loads((multi / "result.json").read_text())
  assert result["metrics"] == pytest.approx(single, rel=1e-6, abs=1e-9, nan_ok=True)
  assert {"lin/micro_map", "lin/macro_map", "lin/official_batch_micro_map", "nn/micro_map",
          "nn/macro_f1"} <= set(single)
  assert single["lin/num_examples"] == single["nn/num_examples"] == 3
  for name in ("lin", "nn"):
    info = json.loads((multi / name / "metrics.json").read_text())["info"]
    assert info["num_train"] == 3   # both processes' rows gathered
    with np.load(tmp_path / "one" / "point" / name / "predictions.npz") as a, \
         np.load(multi / name / "predictions.npz") as b:
      np.testing.assert_array_equal(b["ids"], a["ids"])
      np.testing.assert_allclose(b["scores"], a["scores"], rtol=1e-5, atol=1e-6)
  # process 0 alone wrote the cache: one file per (split, layers) as in one process
  assert len(list((tmp_path / "two" / "feature_cache").glob("*.npz"))) == 4
