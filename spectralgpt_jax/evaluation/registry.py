"""Evaluator registry: `config.evals.<name>.type` -> evaluator class, built from its block.

    @registry.register("knn")
    class KnnEvaluator:
      def __init__(self, *, ctx, train_data, test_data, k=20, temperature=0.07): ...
      def run(self) -> dict[str, float]: ...

    evaluator = registry.build(name, config.evals[name], ctx)   # cls(**block, ctx=ctx)

The constructor's keyword arguments are the block's fields (all but `type`): defaults live in
the signature, and `build` refuses a block with an unknown or a missing field with a TypeError
naming `config.evals.<name>` and the fields the class takes (big_vision's evaluators).
Built-in types live in their own modules (BUILTIN) and are imported on first `get`, so
importing the registry stays light.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Mapping

# type name -> module that registers it on import (add new built-in evaluators here).
BUILTIN = {
    "linear": "spectralgpt_jax.evaluation.linear",
    "knn": "spectralgpt_jax.evaluation.knn",
    "finetune": "spectralgpt_jax.evaluation.finetune",
    "dense": "spectralgpt_jax.evaluation.dense_eval",
    "change_probe": "spectralgpt_jax.evaluation.change_probe",
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


def known_types() -> list[str]:
  return sorted(set(_EVALUATORS) | set(BUILTIN))


def get(type_name: str) -> type:
  """The evaluator class of `type_name`; ValueError listing the known types otherwise."""
  if type_name not in _EVALUATORS and type_name in BUILTIN:
    importlib.import_module(BUILTIN[type_name])
  if type_name not in _EVALUATORS:
    raise ValueError(f"unknown evaluator type {type_name!r}; known types: {known_types()}")
  return _EVALUATORS[type_name]


def _fields(cls: type) -> tuple[dict[str, Any], list[str]]:
  """({field: default} of the optional fields, [required fields]) of `cls`'s constructor:
  its keyword arguments but `ctx`, and where it passes `**fields` on, those of the base
  classes' constructors."""
  optional, required = {}, []
  for klass in cls.__mro__:
    if "__init__" not in vars(klass):
      continue
    passes_on = False
    for p in inspect.signature(klass.__init__).parameters.values():
      if p.kind == p.VAR_KEYWORD:
        passes_on = True
      elif p.name in ("self", "ctx") or p.kind == p.VAR_POSITIONAL:
        continue
      elif p.default is not p.empty:
        optional.setdefault(p.name, p.default)
      elif p.name not in required:
        required.append(p.name)
    if not passes_on:
      break
  return optional, required


def build(name: str, block: Mapping[str, Any], ctx) -> Any:
  """The evaluator of `config.evals.<name>` = `block`: `cls(**fields, ctx=ctx)`, `cls` chosen
  by `block["type"]`; TypeError naming the block when a field is unknown or missing."""
  if "type" not in block:
    raise ValueError(f"config.evals.{name} has no `type` (known: {known_types()})")
  type_name = str(block["type"])
  cls = get(type_name)
  fields = {k: v for k, v in block.items() if k != "type"}
  optional, required = _fields(cls)
  unknown = sorted(set(fields) - set(optional) - set(required))
  missing = [k for k in required if k not in fields]
  if unknown or missing:
    takes = ", ".join(required + [f"{k}={v!r}" for k, v in optional.items()])
    what = "; ".join(([f"unknown fields {unknown}"] if unknown else [])
                     + ([f"lacks {missing}"] if missing else []))
    raise TypeError(f"config.evals.{name} (type {type_name!r}): {what}. {cls.__name__} "
                    f"({cls.__module__}) takes: {takes}")
  return cls(**fields, ctx=ctx)
