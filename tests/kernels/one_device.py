"""Run Python code in a fresh one-device CPU process (kernel choices are per process)."""

import os
import subprocess
import sys


def run(code: str, **env) -> subprocess.CompletedProcess:
  """Runs `code` with this process's environment minus the simulated device count, plus `env`;
  asserts it exits 0 and returns the result."""
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if "xla_force_host_platform_device_count" not in f]
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "XLA_FLAGS": " ".join(flags), **env}, timeout=300)
  assert result.returncode == 0, result.stderr
  return result
