"""Training with data and workdir in an emulated GCS bucket, as real processes: shards read from
the bucket, checkpoints (orbax through tensorstore's gcs driver), TensorBoard events and panels
written there; a run killed with -9 resumes from the bucket bit-identical to an uninterrupted
one; `export` reads the weights from the bucket. (S3: orbax 0.12.8 writes checkpoints only to
local paths and gs://, see docs/training.md.)"""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from data_pipelines import storage
from spectralgpt_jax import checkpoints as ckpt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOTAL = 8


def _env(store, cache_dir):
  return {**os.environ, **store.env(), "PYTHONPATH": REPO,
          "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
          "JAX_COMPILATION_CACHE_DIR": cache_dir, "SPECTRALGPT_JAX_COMPILATION_CACHE": cache_dir,
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def _train(workdir, shards):
  return [sys.executable, "-m", "spectralgpt_jax", "train", "--config",
          os.path.join(REPO, "configs/pretrain/tiny_s2.py") + ":size=32", "--workdir", workdir,
          f"--config.data.paths={shards}", f"--config.total_steps={TOTAL}",
          "--config.batch_size=8", "--config.checkpoint.every_steps=1",
          "--config.checkpoint.max_to_keep=2", "--config.log.every_steps=2",
          "--config.log.panel_every_steps=4"]


def _committed(workdir):
  """Steps whose checkpoint is complete (orbax's commit marker written last in a bucket)."""
  root = ckpt.checkpoint_dir(workdir)
  return sorted(int(s) for s in storage.listdir(root) if s.isdigit() and storage.exists(
      storage.join(root, s, "commit_success.txt"))) if storage.exists(root) else []


@pytest.mark.slow
def test_train_in_bucket_kill9_resume_and_export(gcs_server, ben_dir, tmp_path):
  env = _env(gcs_server, str(tmp_path / "jax_cache"))
  with gcs_server.environ():
    bucket = gcs_server.make_bucket("test-train")
    shards = storage.join(bucket, "ben")
    storage.upload_tree(ben_dir, shards, last=("manifest.json",))
    straight, crashed = storage.join(bucket, "straight"), storage.join(bucket, "crashed")
    res = subprocess.run(_train(straight, shards), env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _committed(straight)[-1] == TOTAL
    assert storage.glob(storage.join(straight, "tensorboard", "events.out.tfevents.*"))
    assert storage.glob(storage.join(straight, "panels", "step_*.png"))
    assert not storage.exists(storage.join(straight, ".lock"))  # released

    proc = subprocess.Popen(_train(crashed, shards), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while max(_committed(crashed) or [0]) < 3 and proc.poll() is None:
      assert time.time() < deadline, "no progress"
      time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and max(_committed(crashed)) < TOTAL
    res = subprocess.run(_train(crashed, shards), env=env, capture_output=True, text=True,
                         timeout=900)   # the dead holder's lock is replaced, the run resumes
    assert res.returncode == 0, res.stderr[-3000:]
    assert "replacing the stale lock" in res.stderr
    a = jax.device_get(ckpt.load_params(straight))
    b = jax.device_get(ckpt.load_params(crashed))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_array_equal(x, y)

    out = storage.join(bucket, "export", "w.safetensors")
    res = subprocess.run([sys.executable, "-m", "spectralgpt_jax", "export", "--weights",
                          crashed, "--out", out], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    from safetensors.numpy import load
    exported = load(storage.read_bytes(out))
    assert storage.exists(out + ".json")
    assert sum(v.size for v in exported.values()) == sum(x.size for x in jax.tree.leaves(b))
