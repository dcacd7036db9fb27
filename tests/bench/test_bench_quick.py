"""Every bench/*_bench.py runs in its --quick mode (tiny sizes, a child process), so none can rot.

A quick run must exit 0, write its section to the temp file it names ("--quick: results in
PATH"), and leave BENCHMARKS.md untouched. Scripts that need what this machine may lack (a
compiler venv, a GPU, g++) skip, naming it. Nothing under bench/ may import from tests/.
"""

from __future__ import annotations

import ast
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*_bench.py"))
COMPILER_VENVS = (ROOT / ".venv-tpu" / "bin" / "python", ROOT / ".venv-cuda12" / "bin" / "python")


def _gpu_absent() -> str | None:
  import jax
  platform = jax.devices()[0].platform
  return None if platform == "gpu" else f"needs an NVIDIA GPU (jax sees {platform})"


def _compiler_venv_absent() -> str | None:
  if any(p.exists() for p in COMPILER_VENVS):
    return None
  return "needs .venv-tpu or .venv-cuda12 (`make setup-tpu` / `make setup-cuda12`)"


def _cxx_absent() -> str | None:
  if os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++"):
    return None
  return "needs a C++ compiler (g++) for the kernel parts"


NEEDS = {"gpu_step_bench.py": _gpu_absent, "aot_bench.py": _compiler_venv_absent,
         "attention_bench.py": _cxx_absent}


def _digest(path: pathlib.Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def test_every_script_is_covered():
  assert len(SCRIPTS) >= 9, SCRIPTS
  assert set(NEEDS) <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_imports_nothing_from_tests(script):
  test_modules = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"tests"}
  tree = ast.parse((BENCH / script).read_text())
  names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
  names += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
  bad = sorted(n for n in names if n.split(".")[0] in test_modules)
  assert not bad, f"bench/{script} imports {bad} from tests/"


@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_run(script, tmp_path):
  why = NEEDS.get(script, lambda: None)()
  if why:
    pytest.skip(f"{script}: {why}")
  before = _digest(ROOT / "BENCHMARKS.md")
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  proc = subprocess.run([sys.executable, str(BENCH / script), "--quick"], cwd=tmp_path,
                        env=env, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, f"{script} --quick failed:\n{proc.stderr[-4000:]}"
  found = re.search(r"--quick: results in (\S+)", proc.stdout)
  assert found, f"{script} --quick did not name its results file:\n{proc.stdout[-2000:]}"
  out = pathlib.Path(found.group(1))
  try:
    text = out.read_text()
    assert "|" in text and len(text.splitlines()) >= 3, text  # a markdown table was written
  finally:
    out.unlink(missing_ok=True)
  assert _digest(ROOT / "BENCHMARKS.md") == before, f"{script} --quick wrote BENCHMARKS.md"
