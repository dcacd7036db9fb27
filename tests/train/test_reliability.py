"""Crash safety, with real processes: kill -9 at random steps (slow: five children), kill
during a checkpoint write, SIGTERM through the CLI, and the demo job (slow)."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train.state import TrainState

import train_util

TOTAL = 40
OVERRIDES = [f"--config.total_steps={TOTAL}", "--config.checkpoint.every_steps=1",
             "--config.checkpoint.max_to_keep=2", "--config.log.every_steps=5",
             "--config.log.panel_every_steps=0"]


def _cli(workdir, *extra):
  return [sys.executable, "-m", "spectralgpt_jax", "train",
          "--config", os.path.join(train_util.REPO, "configs/pretrain/tiny_s2.py") +
          ":synthetic,size=32",
          "--workdir", workdir, *OVERRIDES, *extra]


def _committed(workdir):
  d = ckpt.checkpoint_dir(workdir)
  return sorted(int(n) for n in os.listdir(d) if n.isdigit()) if os.path.isdir(d) else []


@pytest.mark.slow
def test_kill9_at_random_steps_then_resume_is_bit_identical(tmp_path, jax_cache_dir):
  env = train_util.subprocess_env(jax_cache_dir)
  straight = str(tmp_path / "straight")
  subprocess.run(_cli(straight), env=env, check=True, capture_output=True, timeout=600)
  crashed = str(tmp_path / "crashed")
  rng = random.Random(0)
  history = []
  for target in sorted(rng.sample(range(3, TOTAL - 4), 4)):
    if max(_committed(crashed) or [0]) >= target:
      continue
    proc = subprocess.Popen(_cli(crashed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while max(_committed(crashed) or [0]) < target and proc.poll() is None:
      assert time.time() < deadline, "child made no progress"
      time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.05))  # land mid-step or mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    history.append((target, proc.returncode, _committed(crashed)))
  assert sum(rc == -signal.SIGKILL for _, rc, steps in history if steps[-1] < TOTAL) >= 3, history
  subprocess.run(_cli(crashed), env=env, check=True, capture_output=True, timeout=600)
  assert _committed(crashed)[-1] == TOTAL
  a = jax.device_get(ckpt.load_params(straight))
  b = jax.device_get(ckpt.load_params(crashed))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


_WRITER = textwrap.dedent("""
    import sys, time
    import jax, jax.numpy as jnp
    from spectralgpt_jax import checkpoints as ckpt
    from spectralgpt_jax.train.state import TrainState
    mngr = ckpt.make_manager(sys.argv[1])
    big = lambda v: {"w": jnp.full((48, 1024, 1024), v, jnp.float32)}  # 192 MiB
    ckpt.save(mngr, 1, TrainState(jnp.int32(1), big(1.0), {}), None, {"ok": 1}, force=True)
    mngr.wait_until_finished()
    ckpt.save(mngr, 2, TrainState(jnp.int32(2), big(2.0), {}), None, {"ok": 2}, force=True)
    print("SAVING", flush=True)
    time.sleep(60)
""")


def test_kill_during_checkpoint_write_keeps_the_previous_one(tmp_path, jax_cache_dir):
  workdir = str(tmp_path / "w")
  env = train_util.subprocess_env(jax_cache_dir, devices=1)
  proc = subprocess.Popen([sys.executable, "-c", _WRITER, workdir], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
  assert proc.stdout.readline().strip() == "SAVING"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  names = os.listdir(ckpt.checkpoint_dir(workdir))
  assert any(n.startswith("2.") and "tmp" in n for n in names), names  # a partial step 2
  assert ckpt.latest_step(workdir) == 1
  assert ckpt.read_meta(workdir) == {"ok": 1}
  params = ckpt.load_params(workdir)
  assert float(params["w"][0, 0, 0]) == 1.0
  # The next writer cleans the partial step up (in the background) and can save step 2.
  mngr = ckpt.make_manager(workdir)
  state = TrainState(np.int32(2), {"w": np.full((2, 2), 3.0, np.float32)}, {})
  assert ckpt.save(mngr, 2, state, None, {"ok": 3}, force=True)
  mngr.wait_until_finished()
  mngr.close()
  assert sorted(os.listdir(ckpt.checkpoint_dir(workdir))) == ["1", "2"]
  assert ckpt.read_meta(workdir) == {"ok": 3}


def test_sigterm_through_the_cli_saves_and_exits_zero(tmp_path, jax_cache_dir):
  workdir = str(tmp_path / "w")
  cmd = _cli(workdir, "--config.total_steps=100000", "--config.checkpoint.every_steps=100000")
  proc = subprocess.Popen(cmd, env=train_util.subprocess_env(jax_cache_dir),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  lines = []
  for line in proc.stderr:
    lines.append(line)
    if "step 10/" in line:
      proc.send_signal(signal.SIGTERM)
      break
  out = proc.stderr.read()
  assert proc.wait(timeout=120) == 0, "".join(lines[-20:]) + out
  assert "stopping at step" in out
  step = ckpt.latest_step(workdir)
  assert 10 <= step < 100000


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, example_dir, jax_cache_dir):
  pytest.importorskip("rasterio")
  env = train_util.subprocess_env(jax_cache_dir, devices=1)
  out = subprocess.run([sys.executable, "-m", "spectralgpt_jax", "demo", "--input",
                        str(example_dir), "--workdir", str(tmp_path / "demo"), "--steps", "20"],
                       env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "Continue this run" in out.stdout
  run = tmp_path / "demo" / "run"
  assert ckpt.latest_step(str(run)) == 20
  assert any(p.name.endswith(".png") for p in (run / "panels").iterdir())
  assert any("tfevents" in p.name for p in (run / "tensorboard").iterdir())
