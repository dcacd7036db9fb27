"""spectralgpt_jax.torch imports and loads our export in an interpreter where jax, flax and the
rest of the JAX stack cannot be imported (as after `pip install spectralgpt-jax[torch]` alone)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

BLOCKED = ("jax", "jaxlib", "flax", "optax", "orbax", "grain", "ml_dtypes", "chex",
           "tensorflow_datasets", "ml_collections")

_SCRIPT = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in BLOCKED:
      raise ImportError(f"blocked in this test: {{name}}")
sys.meta_path.insert(0, Block())
import torch
from spectralgpt_jax.torch import from_pretrained
path = {path!r}
if path:
  model = from_pretrained(path)
  x = torch.rand(2, len(model.bands), 32, 32)
  if hasattr(model, "task"):   # a DenseModel: segmentation or change detection
    print(tuple(model(*([x, x] if model.task == "change" else [x])).shape))
  else:
    print(tuple(model.embed(x).shape), tuple(model.forward_features(x, layers=[0])[0].shape))
print(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
"""


def _run(path: str = "") -> str:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
  out = subprocess.run([sys.executable, "-c", _SCRIPT.format(blocked=BLOCKED, path=path)],
                       capture_output=True, text=True, env=env, timeout=120)
  assert out.returncode == 0, out.stderr
  return out.stdout.strip().splitlines()


def test_imports_without_the_jax_stack():
  assert _run() == ["[]"]


def test_loads_an_export_without_the_jax_stack(exported_safetensors):
  assert _run(str(exported_safetensors)) == ["(2, 64) (2, 64, 64)", "[]"]


@pytest.mark.slow
def test_loads_a_dense_export_without_the_jax_stack(tmp_path):
  import dense_helpers as D
  from spectralgpt_jax.export import to_torch
  run, _, _ = D.write_dense_run(tmp_path, D.TINY_CD)
  path = to_torch.export_checkpoint(run, tmp_path / "cd.safetensors").weights
  assert _run(str(path)) == ["(2, 2, 32, 32)", "[]"]
