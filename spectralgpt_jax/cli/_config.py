"""The one config-file loader of the commands, and `--config.a.b=value` overrides with
ml_collections' `config_flags` semantics, without absl flags.

  load_module("configs/eval/tiny_sweep.py")        the file as a module (sweep: get_sweep)
  load("configs/pretrain/tiny_s2.py:synthetic")    get_config(arg), locked: a typo fails
  apply_overrides(config, [("optim.blr", "1e-4")], source="...")   typed, in order

A value is parsed by the type of the field it replaces, with the parsers `config_flags` uses:
int, float, bool (true/false/1/0), str, tuple (`(1,2)`, `1,2` or a repeated flag), a dict for
a ConfigDict field; a field that holds None (or an unknown type) takes a Python literal, else
the text. A field the config does not have is an error naming it (and the closest name).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import sys
from typing import Any, Sequence

from spectralgpt_jax.cli._flags import UsageError


def load_module(path: str):
  """The config file at `path` as a fresh module (as `config_flags` loads it)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path} not found (a .py file with get_config())")
  name = f"_spectralgpt_config_{abs(hash(os.path.abspath(path)))}"
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module  # dataclasses and pickling look their module up by name
  try:
    spec.loader.exec_module(module)
  except BaseException:
    sys.modules.pop(name, None)
    raise
  return module


def load(spec: str):
  """`get_config(arg)` of 'file.py[:arg]', locked (a misspelled override fails)."""
  path, _, arg = spec.partition(":")
  module = load_module(path)
  if not hasattr(module, "get_config"):
    raise ValueError(f"config file {path} has no get_config()")
  config = module.get_config(*([arg] if arg else []))
  if config is None:
    raise ValueError(f"{path}: get_config({arg!r}) returned None")
  if hasattr(config, "lock"):
    config.lock()
  return config


def _parser_for(field_type: type):
  """The absl parser `config_flags` uses for a field of `field_type` (None: a literal)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_dict  # pylint: disable=g-import-not-at-top
  from ml_collections.config_flags import tuple_parser  # pylint: disable=g-import-not-at-top
  if field_type is bool:
    return flags.BooleanParser()
  if field_type is int:
    return flags.IntegerParser()
  if field_type is float:
    return flags.FloatParser()
  if field_type is str:
    return flags.ArgumentParser()
  if field_type is tuple:
    return tuple_parser.TupleParser()
  if isinstance(field_type, type) and issubclass(field_type, config_dict.ConfigDict):
    return "configdict"
  return None


def _literal(text: str) -> Any:
  if text in ("true", "false"):
    text = text.capitalize()
  try:
    return ast.literal_eval(text)
  except (SyntaxError, ValueError):
    return text


def _field_names(config, prefix: str = "") -> list[str]:
  names = []
  for key, value in config.items():
    names.append(prefix + key)
    if hasattr(value, "items"):
      names += _field_names(value, f"{prefix}{key}.")
  return names


def _unknown(key: str, config, source: str) -> UsageError:
  close = difflib.get_close_matches(key, _field_names(config), n=1)
  hint = f" (did you mean {close[0]}?)" if close else ""
  return UsageError(f"--config.{key}: {source} has no field {key!r}{hint}")


def parse_value(config, key: str, values: Sequence[str | None], source: str) -> Any:
  """The typed value of `--config.<key>` given `values` (None: a bare flag, i.e. True)."""
  from ml_collections import config_dict  # pylint: disable=g-import-not-at-top
  from ml_collections.config_flags import config_path  # pylint: disable=g-import-not-at-top
  try:
    field_type = config_path.get_type(key, config)
  except (AttributeError, KeyError, IndexError, ValueError):
    raise _unknown(key, config, source) from None
  parser = _parser_for(field_type)
  if field_type is not bool and None in values:
    raise UsageError(f"--config.{key} needs a value (--config.{key}=VALUE)")
  try:
    if parser is None:
      return _literal(values[-1]) if values[-1] is not None else True
    if parser == "configdict":
      value = ast.literal_eval(values[-1])
      if not isinstance(value, dict):
        raise ValueError(f"{value!r} is not a dict")
      return config_dict.ConfigDict(value)
    if field_type is tuple and len(values) > 1:  # --config.x a --config.x b
      return tuple(_literal(v) for v in values)
    return parser.parse(values[-1] if values[-1] is not None else "true")
  except (SyntaxError, ValueError, TypeError) as e:
    raise UsageError(f"--config.{key}={values[-1]}: not a valid {field_type.__name__} for "
                     f"that field of {source} ({' '.join(str(e).split())})") from None


def apply_overrides(config, overrides: Sequence[tuple[str, str | None]], source: str
                    ) -> dict[str, Any]:
  """Sets every (dotted key, text) of `overrides` in `config`, in order; returns {key: value}.

  Raises UsageError naming the flag for an unknown field, a value of the wrong type, or a
  field given after one of its parents (which would silently replace it)."""
  from ml_collections.config_flags import config_path  # pylint: disable=g-import-not-at-top
  grouped: dict[str, list[str | None]] = {}
  for key, text in overrides:
    grouped.setdefault(key, []).append(text)
  keys = list(grouped)
  for i, a in enumerate(keys):
    for b in keys[i + 1:]:
      if a.startswith(b + "."):
        raise UsageError(f"--config.{b} comes after --config.{a} and would replace it; "
                         "give the parent first")
  values = {}
  for key in keys:
    value = parse_value(config, key, grouped[key], source)
    try:
      config_path.set_value(key, config, value)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
      raise UsageError(f"--config.{key}: cannot set that field of {source} to {value!r} "
                       f"({' '.join(str(e).split())})") from None
    values[key] = value
  return values
