"""Sweep points: readable directory names, result.json files, checkpoint steps.

A point is a dict of dotted overrides ({"pretrained": "runs/demo/run", "seed": 1}); its
directory is a slug of the overrides plus a short hash of their canonical JSON, so two points
never share a directory and the same point always finds its own again (skip or resume).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from typing import Any

from data_pipelines import atomic_io, storage

RESULT = "result.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=,-]+")
_STEP = re.compile(r"(?:^|[/_@-])(?:checkpoints/|step[_=-]?|ckpt[_=-]?)?(\d+)/?$")


def canonical(overrides: dict[str, Any]) -> str:
  return json.dumps(overrides, sort_keys=True, separators=(",", ":"), default=str)


def format_value(v: Any) -> str:
  """Short text for a value: 0.0003 -> 3e-04, '' -> none, 'runs/demo/run' -> demo-run."""
  if isinstance(v, bool) or v is None:
    return str(v)
  if isinstance(v, float):
    return f"{v:g}"
  if isinstance(v, (list, tuple)):
    return "+".join(format_value(x) for x in v)
  s = str(v)
  if not s:
    return "none"
  if "/" in s or os.sep in s:
    parts = [p for p in re.split(r"[\\/]+", s) if p and p not in (".", "..")]
    s = "-".join(parts[-2:]) if parts else "root"
  return s


def slug(overrides: dict[str, Any], max_len: int = 80) -> str:
  """'seed=1,pretrained=demo-run-1a2b3c4d': short keys (last dotted part), values, hash."""
  digest = hashlib.sha1(canonical(overrides).encode()).hexdigest()[:8]
  text = ",".join(f"{k.rsplit('.', 1)[-1]}={format_value(v)}" for k, v in overrides.items())
  text = _UNSAFE.sub("_", text).strip("_")[:max_len] or "base"
  return f"{text}-{digest}"


def checkpoint_step(pretrained: Any) -> int | None:
  """Step named by a checkpoint path ('run/checkpoints/300', 'ckpt_300.pth'), else None."""
  s = str(pretrained or "")
  s = re.sub(r"\.(pth|pt|safetensors|msgpack|npz)$", "", s)
  m = _STEP.search(s)
  return int(m.group(1)) if m else None


def atomic_write_json(path: str, obj: Any) -> None:
  """Writes JSON (NaN allowed) through a temporary file and a rename."""
  atomic_io.atomic_write_json(path, _jsonable(obj), sort_keys=True, allow_nan=True)


def _jsonable(x: Any) -> Any:
  if isinstance(x, dict):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if hasattr(x, "item") and callable(x.item):   # numpy scalars
    return x.item()
  if isinstance(x, (str, int, float, bool)) or x is None:
    return x
  return str(x)


def is_done(point_dir: str) -> bool:
  return storage.exists(os.path.join(point_dir, RESULT))


def load_results(root: str) -> list[dict[str, Any]]:
  """Every `<root>/<point>/result.json`, with "dir" (the point's folder name) added, sorted."""
  out = []
  if not storage.isdir(root):
    return out
  for name in storage.listdir(root):
    path = os.path.join(root, name, RESULT)
    if storage.exists(path):
      res = json.loads(storage.read_text(path))
      res["dir"] = name
      out.append(res)
  return out


def finite(x: Any) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
