"""Loading a config file imports no jax, grain, tfds or orbax (configs compute, they do no I/O).

Each file is loaded in a fresh interpreter the way `ml_collections.config_flags` loads it
(a module from the file's path, then `get_config()`), so nothing else imported first hides
an import.
"""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.py"))
HEAVY = ("jax", "grain", "tensorflow_datasets", "orbax")

_LOAD = """
import importlib.util, sys
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("config_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if hasattr(module, "get_config"):
  module.get_config(None).to_json()
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("path", FILES)
def test_config_file_loads_without_heavy_imports(path):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
  out = subprocess.run([sys.executable, "-c", _LOAD.format(heavy=HEAVY), path], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "", f"{path} imports {out.stdout.strip()}"
