"""Sweep helpers (STYLE.md 4.3): lists of dotted-override dicts, one dict per point.

A config may define `get_sweep(arg)` returning such a list; `python -m spectralgpt_jax sweep`
applies each dict with `ConfigDict.update_from_flattened_dict` and runs (or prints) one
`evaluate` per point.

  product(sweep("seed", [0, 1]), sweep("pretrained", ["runs/a", ""]))
  -> [{"seed": 0, "pretrained": "runs/a"}, {"seed": 0, "pretrained": ""}, {"seed": 1, ...}, ...]
"""

from __future__ import annotations

import itertools
from typing import Any

Point = dict[str, Any]


def sweep(key: str, values) -> list[Point]:
  """One axis: [{key: v} for v in values]."""
  return [{key: v} for v in values]


def _merge(dicts) -> Point:
  out: Point = {}
  for d in dicts:
    clash = set(out) & set(d)
    if clash:
      raise ValueError(f"sweep axes set the same keys twice: {sorted(clash)}")
    out.update(d)
  return out


def product(*axes: list[Point]) -> list[Point]:
  """Cartesian merge of axes (the last axis varies fastest)."""
  return [_merge(combo) for combo in itertools.product(*axes)]


def zipit(*axes: list[Point]) -> list[Point]:
  """Elementwise merge of axes of equal length."""
  lengths = {len(a) for a in axes}
  if len(lengths) > 1:
    raise ValueError(f"zipit needs axes of equal length, got {[len(a) for a in axes]}")
  return [_merge(combo) for combo in zip(*axes)]
