"""Every shipped training config lowers its train step through `aot.compile_config`'s path
(`aot.lower_with_devices`) on the CPU backend: no compiler venv, nothing compiled.

The configs are loaded unchanged (a run length left to the shard manifest included: the compile
uses aot.STAND_IN_TOTAL_STEPS); a preset with a fixed mesh gets as many host devices as its mesh
names. One child process lowers them all (the host device count is fixed before jax starts)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HOST_DEVICES = 256  # the largest preset mesh (configs/pods/*_v5e256.py)

CHILD = r"""
import json, math, sys
import jax
from spectralgpt_jax.cli import _config
from spectralgpt_jax.compile import aot
from spectralgpt_jax.sharding import mesh as mesh_lib
out = {}
for path in sys.argv[1:]:
  config = _config.load(path)
  sizes = [int(v) for v in config.mesh.values()]
  need = 1 if -1 in sizes else math.prod(sizes)
  before = config.get("total_steps")
  try:
    lowered, mesh = aot.lower_with_devices(config, jax.devices("cpu")[:need])
    out[path] = {"ok": True, "mesh": dict(mesh.shape), "hlo": len(lowered.as_text()),
                 "total_steps_after": config.get("total_steps"), "before": before}
  except Exception as e:
    out[path] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
print("RESULT " + json.dumps(out))
"""


def _config_files() -> list[str]:
  """Training configs: configs/*/ files with get_config, except configs/eval/ (evaluation
  configs, which build training configs of their own at run time)."""
  return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").glob("*/*.py")
                if p.parent.name != "eval" and "def get_config" in p.read_text())


@pytest.fixture(scope="module")
def lowered() -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
             XLA_FLAGS=f"--xla_force_host_platform_device_count={HOST_DEVICES}")
  proc = subprocess.run([sys.executable, "-c", CHILD, *_config_files()], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stderr[-3000:]
  return json.loads(lines[-1][len("RESULT "):])


def test_every_training_config_is_found(lowered):
  kinds = {path.split("/")[1] for path in lowered}
  assert {"pretrain", "pods", "finetune"} <= kinds, sorted(lowered)


@pytest.mark.parametrize("path", _config_files())
def test_config_lowers_on_cpu(lowered, path):
  result = lowered[path]
  assert result["ok"], f"{path}: {result.get('error')}"
  assert result["hlo"] > 0
  assert result["total_steps_after"] == result["before"]  # the caller's config is untouched
