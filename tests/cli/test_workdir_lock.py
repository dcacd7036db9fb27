"""One run per directory (cli/_workdir_lock.py), with real processes: a second holder is
refused in one line naming the directory and the first; a holder killed with -9 leaves a
stale lock that the next start replaces; the lock goes on exit, exceptions included; two
`train` commands on one workdir, and `ingest` into a held --out."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from spectralgpt_jax import __main__ as entry
from spectralgpt_jax.cli import _workdir_lock as L

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_HOLD = textwrap.dedent("""
    import sys, time
    from spectralgpt_jax.cli import _workdir_lock as L
    with L.held(sys.argv[1], "train"):
      print("held", flush=True)
      if sys.argv[2] == "raise":
        raise SystemExit(3)
      time.sleep(300)
""")

_TAKE = textwrap.dedent("""
    import sys
    from spectralgpt_jax.cli import _workdir_lock as L
    try:
      with L.held(sys.argv[1], "evaluate"):
        print("took it", flush=True)
    except L.WorkdirLockedError as e:
      print(e, flush=True)
      raise SystemExit(1)
""")


def _env(**extra):
  return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
      REPO, os.environ.get("PYTHONPATH", "")])), **extra}


def _holder(directory, mode="sleep"):
  proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(directory), mode], env=_env(),
                          stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


def _take(directory):
  return subprocess.run([sys.executable, "-c", _TAKE, str(directory)], env=_env(),
                        capture_output=True, text=True, timeout=120)


def test_second_process_refused_then_kill9_holder_is_replaced(tmp_path):
  work = tmp_path / "w"
  first = _holder(work)
  try:
    lock = json.loads((work / L.LOCK_NAME).read_text())
    assert (lock["pid"], lock["host"], lock["command"]) == (first.pid, socket.gethostname(),
                                                            "train")
    res = _take(work)
    assert res.returncode == 1
    line = res.stdout.strip()
    assert line.startswith(f"{work} is in use by train (pid {first.pid} on host "
                           f"{socket.gethostname()}, since "), line
    assert "wait for it to finish or stop it" in line
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  assert (work / L.LOCK_NAME).exists()  # kill -9 leaves it behind
  res = _take(work)
  assert res.returncode == 0 and res.stdout.strip() == "took it", res.stdout + res.stderr
  assert f"replacing the stale lock of train (pid {first.pid}" in res.stderr
  assert "is no longer running" in res.stderr
  assert not (work / L.LOCK_NAME).exists()  # released by the second on exit


def test_released_on_exception(tmp_path):
  proc = _holder(tmp_path, mode="raise")
  assert proc.wait(timeout=60) == 3
  assert not (tmp_path / L.LOCK_NAME).exists()


def _write_lock(directory, age_s, **record):
  path = directory / L.LOCK_NAME
  path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                              "command": "train", "started": "then", **record}))
  then = time.time() - age_s
  os.utime(path, (then, then))
  return path


def test_other_host_stale_only_after_its_heartbeat_stops(tmp_path, capsys):
  _write_lock(tmp_path, 30, host="elsewhere", pid=12)
  with pytest.raises(L.WorkdirLockedError, match="pid 12 on host elsewhere"):
    L.acquire(str(tmp_path), "train")
  _write_lock(tmp_path, L.STALE_AFTER_S + 5, host="elsewhere", pid=12)
  record = L.acquire(str(tmp_path), "train")
  assert record["pid"] == os.getpid()
  assert "last refreshed" in capsys.readouterr().err
  L.release(str(tmp_path), record)


def test_a_reused_pid_does_not_hold_the_lock(tmp_path):
  """Same host, a running pid, but not the process that wrote the lock (its start differs)."""
  _write_lock(tmp_path, 0, pid=os.getpid(), pid_start="1")
  if L._pid_start(os.getpid()) is None:
    pytest.skip("no /proc here: a live pid counts as the holder")
  record = L.acquire(str(tmp_path), "train")
  L.release(str(tmp_path), record)


def test_heartbeat_refreshes_the_lock(tmp_path):
  with L.held(str(tmp_path), "train", heartbeat_s=0.05):
    path = tmp_path / L.LOCK_NAME
    os.utime(path, (0, 0))
    time.sleep(0.5)
    assert time.time() - path.stat().st_mtime < 5


def test_ingest_into_a_held_out_is_refused(tmp_path, capsys):
  out = tmp_path / "shards"
  first = _holder(out)
  try:
    rc = entry.main(["ingest", "--source", "geotiff", "--input", str(tmp_path / "none.tif"),
                     "--out", str(out), "--shards", "1", "--skip_bad"])
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  err = capsys.readouterr().err.strip().splitlines()
  assert rc == 1 and len(err) == 1 and err[0].startswith(
      f"ingest failed: {out} is in use by train (pid {first.pid}"), err
  assert not (out / "manifest.json").exists()


# --------------------------------------------------------------- two real `train` commands

def _train(workdir, cache, *extra):
  cmd = [sys.executable, "-m", "spectralgpt_jax", "train", "--config",
         os.path.join(REPO, "configs/pretrain/tiny_s2.py") + ":synthetic,size=32",
         "--workdir", str(workdir), "--config.checkpoint.every_steps=1",
         "--config.log.every_steps=1", "--config.log.panel_every_steps=0", *extra]
  env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=1",
             SPECTRALGPT_JAX_COMPILATION_CACHE=str(cache))
  return cmd, env


@pytest.mark.slow  # two real trainings (~35 s); the lock's own real-process tests stay in the default tier
def test_two_train_commands_on_one_workdir_then_kill9_and_resume(tmp_path):
  from spectralgpt_jax import checkpoints as ckpt
  work, cache = tmp_path / "run", tmp_path / "cache"
  cmd, env = _train(work, cache, "--config.total_steps=100000")
  first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
  try:
    seen = []
    for line in first.stderr:  # wait until it trains
      seen.append(line)
      if "step 2/" in line:
        break
    assert first.poll() is None, "".join(seen[-20:])
    cmd2, env2 = _train(work, cache, "--config.total_steps=3")
    second = subprocess.run(cmd2, env=env2, capture_output=True, text=True, timeout=600)
    last = second.stderr.strip().splitlines()[-1]
    assert second.returncode == 1, second.stderr[-2000:]
    assert last.startswith(f"train failed: {work} is in use by train (pid {first.pid}"), last
    assert "Traceback" not in second.stderr
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  step = ckpt.latest_step(str(work))
  assert step is not None and step >= 1
  cmd3, env3 = _train(work, cache, f"--config.total_steps={step + 1}")
  third = subprocess.run(cmd3, env=env3, capture_output=True, text=True, timeout=600)
  assert third.returncode == 0, third.stderr[-3000:]
  assert f"replacing the stale lock of train (pid {first.pid}" in third.stderr
  assert ckpt.latest_step(str(work)) == step + 1
  assert not (work / L.LOCK_NAME).exists()
