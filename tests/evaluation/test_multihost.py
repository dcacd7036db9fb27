"""evaluation.multihost in two local processes (jax.distributed, one CPU device each): sums
exact beyond int32 and float32, rows and strings in process order, batches of unequal
shares gathered until every process is out."""

import json
import os
import subprocess
import sys

import numpy as np
import portpicker
import pytest

from spectralgpt_jax.evaluation import multihost

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = r"""
import json, sys
import jax
pid, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2,
                           process_id=pid, initialization_timeout=60)
import numpy as np
from spectralgpt_jax.evaluation import multihost, dense_metrics
big = np.asarray([[2**40 + pid, 7], [pid, 1]], np.int64)
acc = dense_metrics.ConfusionAccumulator(2, big)
fine = np.asarray([1e-12 * (pid + 1), 1.0 + 1e-12], np.float64)
# process 0 reads 3 batches (the last one short), process 1 one batch
sizes = [[2, 2, 1], [2]][pid]
batches = iter([{"cube": np.full((n, 3), 10 * pid + i, np.float32),
                 "key": np.array([f"p{pid}-b{i}-r{r}-élan" for r in range(n)])}
                for i, n in enumerate(sizes)])
got = [{"cube": b["cube"][:, 0].tolist(), "key": b["key"].tolist()}
       for b in multihost.global_batches(batches)]
res = {"counts": acc.sum_across_processes().counts.tolist(),
       "fine": multihost.sum_across_processes(fine).tolist(),
       "rows": multihost.gather_rows(np.arange(pid + 1, dtype=np.int64) + 100 * pid).tolist(),
       "strings": multihost.gather_strings(np.array(["a" * (pid + 1)] * (2 - pid))).tolist(),
       "batches": got}
try:
  list(multihost.global_batches(iter([] if pid else [{"cube": np.zeros((1, 3))}])))
except ValueError as e:
  res["error"] = str(e)
with open(out, "w") as f:
  json.dump(res, f)
jax.distributed.shutdown()
"""


def test_single_process_returns_its_input():
  x = np.arange(6, dtype=np.int64).reshape(2, 3)
  np.testing.assert_array_equal(multihost.sum_across_processes(x), x)
  np.testing.assert_array_equal(multihost.gather_rows(x), x)
  batches = [{"cube": x, "key": np.array(["a", "b"])}]
  assert [b["key"].tolist() for b in multihost.global_batches(iter(batches))] == [["a", "b"]]


def test_two_processes(tmp_path):
  port = portpicker.pick_unused_port()
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
             PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
  outs = [tmp_path / f"p{i}.json" for i in range(2)]
  procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(i), str(port), str(outs[i])],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  logs = [p.communicate(timeout=300) for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(e[-3000:] for _, e in logs)
  res = [json.loads(o.read_text()) for o in outs]
  assert res[0] == res[1]   # every process gets the same
  r = res[0]
  assert r["counts"] == [[2 * 2**40 + 1, 14], [1, 2]]            # int64, not int32
  assert r["fine"] == pytest.approx([3e-12, 2.0 + 2e-12], rel=1e-14, abs=0)  # float64 sums
  assert r["rows"] == [0, 100, 101]
  assert r["strings"] == ["a", "a", "aa"]
  assert r["batches"] == [
      {"cube": [0, 0, 10, 10], "key": [f"p{p}-b0-r{i}-élan" for p in (0, 1) for i in (0, 1)]},
      {"cube": [1, 1], "key": ["p0-b1-r0-élan", "p0-b1-r1-élan"]},
      {"cube": [2], "key": ["p0-b2-r0-élan"]}]
  assert "processes [1] of 2 read no batch" in r["error"]
