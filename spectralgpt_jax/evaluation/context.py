"""`EvalContext`: what every evaluator gets besides its own config, and its output writers."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import jax
import numpy as np

from data_pipelines.atomic_io import atomic_write


@dataclasses.dataclass
class EvalContext:
  """Shared inputs of the evaluators of one run.

  Attributes:
    workdir: this evaluator's output folder (`<run workdir>/<eval name>`; the runner sets it).
    seed: base seed (random-init encoder, anything stochastic in an evaluator).
    pretrained: orbax run/checkpoint dir or exported weights file (anything
      `spectralgpt_jax.inference.load` takes), or "" for a randomly initialised `model`.
    model: variant name: the architecture when `pretrained` is "", else an override ("" = none).
    cache_dir: where frozen-encoder features are cached (shared by sibling sweep points).
    process_local: False (default): outputs are the same on every process and process 0
      writes them; True: outputs this process alone computed, written by it (`local()`).
  """

  workdir: str
  seed: int
  pretrained: str
  model: str
  cache_dir: str
  process_local: bool = False

  @property
  def name(self) -> str:
    """The evaluator's name in `config.evals` (its folder's name)."""
    return os.path.basename(self.workdir)

  def local(self) -> EvalContext:
    """The same context whose writers write from the calling process (its own outputs)."""
    return dataclasses.replace(self, process_local=True)

  def _write(self, name: str, write) -> str:
    """`write(file)` into `<workdir>/<name>` atomically, by this process if `process_local`
    else by process 0 only. Returns the path."""
    path = os.path.join(self.workdir, name)
    if self.process_local or jax.process_index() == 0:
      atomic_write(path, write)
    return path

  def write_json(self, name: str, obj: Mapping[str, Any]) -> str:
    """Writes `<workdir>/<name>` (JSON, atomic). Returns the path."""
    return self._write(name, lambda f: f.write(
        json.dumps(obj, indent=1, sort_keys=True, default=_jsonable).encode()))

  def write_npz(self, name: str, **arrays: np.ndarray) -> str:
    """Writes `<workdir>/<name>` (.npz, atomic). Returns the path."""
    return self._write(name, lambda f: np.savez(f, **arrays))

  def write_bytes(self, name: str, data: bytes) -> str:
    """Writes `<workdir>/<name>` (atomic). Returns the path."""
    return self._write(name, lambda f: f.write(data))


def _jsonable(x: Any) -> Any:
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(f"not JSON serialisable: {type(x)}")
