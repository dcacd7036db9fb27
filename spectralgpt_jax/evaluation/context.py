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
  """

  workdir: str
  seed: int
  pretrained: str
  model: str
  cache_dir: str

  def write_json(self, name: str, obj: Mapping[str, Any]) -> str:
    """Writes `<workdir>/<name>` (process 0 only, atomic). Returns the path."""
    path = os.path.join(self.workdir, name)
    if jax.process_index() == 0:
      atomic_write(path, lambda f: f.write(json.dumps(obj, indent=1, sort_keys=True,
                                                      default=_jsonable).encode()))
    return path

  def write_npz(self, name: str, **arrays: np.ndarray) -> str:
    """Writes `<workdir>/<name>` (.npz, process 0 only, atomic). Returns the path."""
    path = os.path.join(self.workdir, name)
    if jax.process_index() == 0:
      atomic_write(path, lambda f: np.savez(f, **arrays))
    return path

  def write_bytes(self, name: str, data: bytes) -> str:
    path = os.path.join(self.workdir, name)
    if jax.process_index() == 0:
      atomic_write(path, lambda f: f.write(data))
    return path


def _jsonable(x: Any) -> Any:
  if isinstance(x, np.generic):
    return x.item()
  if isinstance(x, np.ndarray):
    return x.tolist()
  raise TypeError(f"not JSON serialisable: {type(x)}")
