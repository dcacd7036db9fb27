"""Evaluator registry: `config.evals.<name>.type` -> evaluator class.

    @registry.register("linear")
    class LinearEvaluator:
      def __init__(self, cfg, ctx): ...      # cfg: the ConfigDict of config.evals.<name>
      def run(self) -> dict[str, float]: ...

Built-in types live in their own modules (BUILTIN) and are imported on first `get`, so
importing the registry stays light.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable

# type name -> module that registers it on import (add new built-in evaluators here).
BUILTIN = {
    "linear": "spectralgpt_jax.evaluation.linear",
    "knn": "spectralgpt_jax.evaluation.knn",
    "finetune": "spectralgpt_jax.evaluation.finetune",
    "dense": "spectralgpt_jax.evaluation.dense_eval",
}

_EVALUATORS: dict[str, type] = {}


def register(type_name: str) -> Callable[[type], type]:
  """Class decorator: makes `cls` the evaluator of `type_name`."""
  def deco(cls: type) -> type:
    known = _EVALUATORS.get(type_name)
    if known is not None and known.__qualname__ != cls.__qualname__:
      raise ValueError(f"evaluator type {type_name!r} is already registered by {known}")
    _EVALUATORS[type_name] = cls
    return cls
  return deco


def require_fields(cfg, ctx, type_name: str, fields: tuple[str, ...], hint: str) -> None:
  """ValueError naming `config.evals.<name>` (the eval's folder name), its type and the `fields`
  it lacks, with `hint` (what each field is, which builder makes them)."""
  missing = [k for k in fields if k not in cfg]
  if missing:
    name = os.path.basename(ctx.workdir)
    raise ValueError(f"config.evals.{name} (type {type_name!r}) lacks {missing}: {hint}")


def known_types() -> list[str]:
  return sorted(set(_EVALUATORS) | set(BUILTIN))


def get(type_name: str) -> type:
  """The evaluator class of `type_name`; ValueError listing the known types otherwise."""
  if type_name not in _EVALUATORS and type_name in BUILTIN:
    importlib.import_module(BUILTIN[type_name])
  if type_name not in _EVALUATORS:
    raise ValueError(f"unknown evaluator type {type_name!r}; known types: {known_types()}")
  return _EVALUATORS[type_name]
