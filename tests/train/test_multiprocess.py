"""Multi-host: two local processes with four CPU devices each (jax.distributed + gloo) give the
same loss sequence as one process with eight devices, and write one set of logs."""

import os
import subprocess
import sys

import numpy as np
import portpicker
import pytest

from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train import loop

import train_util

pytestmark = pytest.mark.slow
STEPS = 5


def test_two_processes_match_one(tmp_path, jax_cache_dir):
  overrides = [f"--config.total_steps={STEPS}", "--config.log.every_steps=1",
               "--config.checkpoint.every_steps=5", "--config.log.panel_every_steps=5"]
  config = train_util.tiny(**{"total_steps": STEPS, "checkpoint.every_steps": 5})
  single = str(tmp_path / "single")
  loop.train(config, single)

  multi = str(tmp_path / "multi")
  port = portpicker.pick_unused_port()
  env = train_util.subprocess_env(jax_cache_dir, devices=4)
  procs = [subprocess.Popen(
      [sys.executable, "-m", "spectralgpt_jax", "train", "--config",
       os.path.join(train_util.REPO, "configs/pretrain/tiny_s2.py:synthetic,size=32"),
       "--workdir", multi, *overrides, "--distributed",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
  errs = [p.communicate(timeout=600)[1] for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(e[-3000:] for e in errs)
  assert "process 1/2, 4 local / 8 global devices" in errs[1]

  want, _ = train_util.read_events(os.path.join(single, "tensorboard"))
  got, images = train_util.read_events(os.path.join(multi, "tensorboard"))
  for tag in ("loss", "grad_norm", "param_norm"):
    np.testing.assert_allclose([v for _, v in got[tag]], [v for _, v in want[tag]], rtol=1e-5,
                               err_msg=tag)
  assert len(got["loss"]) == STEPS and len(images["reconstruction"]) == 1  # one writer
  assert len([f for f in os.listdir(os.path.join(multi, "tensorboard")) if "tfevents" in f]) == 1
  assert ckpt.latest_step(multi) == STEPS
  iter_files = os.listdir(os.path.join(ckpt.checkpoint_dir(multi), str(STEPS), "data_iter"))
  assert {"process_0-of-2.json", "process_1-of-2.json"} <= set(iter_files)
