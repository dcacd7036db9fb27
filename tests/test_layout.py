"""The rooms of the codebase and what each may import (docs/architecture.md's rooms table, enforced).

Every import statement is read (module level and inside functions): a room may use only the
project packages listed for it. Third-party imports are not restricted here, except that the
package root and the configs stay light (tested by importing them in tests/configs).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = "spectralgpt_jax"

# room (a path prefix, most specific first) -> project modules it may import (prefixes).
ALLOWED = {
    f"{PKG}/__init__.py": (),
    f"{PKG}/__main__.py": (f"{PKG}.cli",),
    f"{PKG}/hostmem.py": (),
    f"{PKG}/devices.py": (),
    f"{PKG}/sharding/": (f"{PKG}.sharding",),
    f"{PKG}/models/": (f"{PKG}.models", f"{PKG}.sharding.axis_names"),
    f"{PKG}/losses.py": (),
    f"{PKG}/weights_format.py": (),
    # PyTorch only: no jax room (tests/torch/test_torch_without_jax.py imports it with the JAX
    # stack blocked); the variant table is read as a file (torch/factories.py).
    f"{PKG}/torch/": (f"{PKG}.torch", f"{PKG}.weights_format", "data_pipelines.schema",
                      "data_pipelines.normalization"),
    f"{PKG}/kernels/": (f"{PKG}.kernels", f"{PKG}.models.ops"),
    f"{PKG}/checkpoints": (f"{PKG}.checkpoints",),
    f"{PKG}/train/": (f"{PKG}.train", f"{PKG}.models", f"{PKG}.kernels.select", f"{PKG}.losses",
                      f"{PKG}.sharding", f"{PKG}.checkpoints", f"{PKG}.devices",
                      "data_pipelines"),
    f"{PKG}/export/": (f"{PKG}.export", f"{PKG}.models", f"{PKG}.checkpoints",
                       f"{PKG}.weights_format", "data_pipelines.schema",
                       "data_pipelines.storage"),
    f"{PKG}/inference": (f"{PKG}.inference", f"{PKG}.export", f"{PKG}.models", f"{PKG}.losses",
                         f"{PKG}.checkpoints", f"{PKG}.kernels.select", "data_pipelines"),
    f"{PKG}/compile/": (f"{PKG}.compile", f"{PKG}.train.program", f"{PKG}.sharding.mesh",
                        f"{PKG}.devices"),
    f"{PKG}/predict/": (f"{PKG}.predict", f"{PKG}.inference", f"{PKG}.models",
                        f"{PKG}.kernels.select", f"{PKG}.checkpoints", "data_pipelines"),
    f"{PKG}/evaluation/": (f"{PKG}.evaluation", f"{PKG}.predict", f"{PKG}.models", f"{PKG}.inference", f"{PKG}.export",
                           f"{PKG}.checkpoints", f"{PKG}.train", f"{PKG}.kernels.select",
                           f"{PKG}.sharding", f"{PKG}.losses", "data_pipelines"),
    f"{PKG}/sweep/": (f"{PKG}.sweep", "data_pipelines.atomic_io", "data_pipelines.storage",
                      f"{PKG}.evaluation.metrics"),
    f"{PKG}/cli/": (PKG, "data_pipelines", "configs"),
    "data_pipelines/": ("data_pipelines",),
    "configs/": ("configs", "data_pipelines.config"),
}


def _room(path: str) -> str | None:
  for prefix in sorted(ALLOWED, key=len, reverse=True):
    if path.startswith(prefix):
      return prefix
  return None


def _project_imports(source: str) -> list[tuple[str, ...]]:
  """Each import of a project module as its candidate names: `import a.b` -> ("a.b",);
  `from a import b` -> ("a.b", "a") (b is a submodule or a symbol of a)."""
  out = []
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Import):
      out += [(a.name,) for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      out += [(f"{node.module}.{a.name}", node.module) for a in node.names]
  return [c for c in out if c[0].split(".")[0] in (PKG, "data_pipelines", "configs")]


def _files():
  for folder in (PKG, "data_pipelines", "configs"):
    for path in sorted((ROOT / folder).rglob("*.py")):
      yield path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", list(_files()))
def test_room_imports_only_what_it_may(path):
  room = _room(path)
  assert room is not None, f"{path} belongs to no room of tests/test_layout.py (add it)"
  allowed = ALLOWED[room] + (f"{PKG}.__version__",)  # the root holds nothing else
  ok = lambda name: any(name == a or name.startswith(a + ".") for a in allowed)
  bad = sorted(c[0] for c in _project_imports((ROOT / path).read_text())
               if not any(ok(name) for name in c))
  assert not bad, f"{path} (room {room}) imports {bad}; it may import {list(allowed)}"
