"""Reading and writing PyTorch weight files without executing untrusted code.

`.pth` files are read with `torch.load(weights_only=True)`: torch's restricted unpickler, which
builds tensors and plain containers only. The one class the official SpectralGPT checkpoints
need on top of that, `argparse.Namespace` (their `args` entry), is allow-listed; any other
global makes the load fail with `UnsafeCheckpointError`, which lists what the file asks for.
`.safetensors` files hold no code at all and are preferred wherever we write.

All state_dicts cross this module as `dict[str, np.ndarray]` (bfloat16 as ml_dtypes.bfloat16).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
from typing import Any, Mapping

import ml_dtypes
import numpy as np

# The file formats themselves (manifest key, suffixes, the weights-only .pth reader) are shared
# with the PyTorch package: spectralgpt_jax/weights_format.py.
from spectralgpt_jax.weights_format import (  # noqa: F401  (re-exported names)
    SAFETENSORS_MANIFEST_KEY, PTH_SUFFIXES, SAFETENSORS_SUFFIXES, CorruptWeightsError,
    UnsafeCheckpointError, embedded_manifest, load_pth, unreadable as _unreadable,
    unwrap_state_dict)


def _torch():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # torch is an optional extra
    raise ImportError("reading or writing .pth files needs PyTorch: pip install "
                      "'spectralgpt-jax[torch]'") from e
  return torch


def to_numpy(tensor) -> np.ndarray:
  """torch.Tensor -> numpy copy (bfloat16 kept as ml_dtypes.bfloat16)."""
  torch = _torch()
  t = tensor.detach().cpu()
  if t.dtype == torch.bfloat16:
    return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16).copy()
  return t.numpy().copy()


def to_tensor(array: np.ndarray):
  """numpy (incl. ml_dtypes.bfloat16) -> torch.Tensor that owns its memory."""
  torch = _torch()
  a = np.ascontiguousarray(array)
  if a.dtype == ml_dtypes.bfloat16:
    return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
  return torch.from_numpy(a.copy())


def _jsonable(value: Any) -> Any:
  """argparse values -> JSON (paths and other objects become strings)."""
  if isinstance(value, (str, int, float, bool)) or value is None:
    return value
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, Mapping):
    return {str(k): _jsonable(v) for k, v in value.items()}
  return str(value)


def check_finite(state: Mapping[str, np.ndarray], path: str | os.PathLike) -> None:
  """Raises CorruptWeightsError naming the first tensor holding NaN or Inf."""
  for key, value in state.items():
    a = np.asarray(value)
    if a.dtype == ml_dtypes.bfloat16 or a.dtype.kind == "f" and a.dtype.itemsize < 4:
      a = a.astype(np.float32)
    if a.dtype.kind not in "fc":
      continue
    bad = ~np.isfinite(a)
    if bad.any():
      first = tuple(int(i) for i in np.argwhere(bad)[0])
      raise CorruptWeightsError(f"{path}: tensor {key!r} {list(a.shape)} holds {int(bad.sum())} "
                                f"non-finite value(s), first at index {first} "
                                f"({a[first]!r}); refusing to use these weights")


def split_checkpoint(obj: Any, path: str | os.PathLike = "checkpoint"
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """A loaded .pth object -> (state_dict as numpy, extras).

  Accepts a bare state_dict or a wrapper dict ({'model': sd, 'args', 'epoch', ...}). A DDP
  `module.` prefix is stripped. Extras: epoch and args (as a JSON-able dict) when present.
  """
  torch = _torch()
  state, wrapper = unwrap_state_dict(obj, path)
  extras: dict[str, Any] = {}
  if isinstance(wrapper.get("epoch"), (int, float)):
    extras["epoch"] = wrapper["epoch"]
  if isinstance(wrapper.get("args"), argparse.Namespace):
    extras["args"] = _jsonable(vars(wrapper["args"]))
  out = {}
  for key, value in state.items():
    if not isinstance(value, torch.Tensor):
      raise ValueError(f"{path}: state_dict entry {key!r} is a {type(value).__name__}, not a "
                       "tensor")
    out[key] = to_numpy(value)
  return out, extras


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """(state_dict as numpy, extras); extras["manifest"] holds our embedded manifest if any."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such file")
  state = {}
  try:
    with safe_open(str(path), framework="pt") as f:
      meta = f.metadata() or {}
      for key in f.keys():
        state[key] = to_numpy(f.get_tensor(key))
  except Exception as e:  # pylint: disable=broad-except  (SafetensorError, OSError, ...)
    raise _unreadable(path, e) from e
  extras: dict[str, Any] = {}
  manifest = embedded_manifest(meta, path)
  if manifest is not None:
    extras["manifest"] = manifest
  return state, extras


def load_state_dict(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """Any supported weight file (.pth/.pt/.bin/.ckpt or .safetensors) -> (state_dict, extras).

  Raises CorruptWeightsError naming the file for an unreadable file, or the tensor for
  NaN/Inf values."""
  path = pathlib.Path(path)
  if path.suffix.lower() in SAFETENSORS_SUFFIXES:
    state, extras = load_safetensors(path)
  else:
    state, extras = split_checkpoint(load_pth(path), path)
  check_finite(state, path)
  return state, extras


def _check_writable(path: pathlib.Path, force: bool) -> None:
  if path.exists() and not force:
    raise FileExistsError(f"{path} exists; pass --overwrite (force=True) to replace it")
  path.parent.mkdir(parents=True, exist_ok=True)


def save_pth(state: Mapping[str, np.ndarray], path: str | os.PathLike, *,
             force: bool = False) -> pathlib.Path:
  """Writes {'model': state_dict}, the official checkpoint layout (loads with weights_only)."""
  torch = _torch()
  path = pathlib.Path(path)
  _check_writable(path, force)
  tmp = path.with_name(path.name + ".tmp")
  torch.save({"model": {k: to_tensor(v) for k, v in state.items()}}, tmp)
  os.replace(tmp, path)
  return path


def save_safetensors(state: Mapping[str, np.ndarray], path: str | os.PathLike, *,
                     manifest: Mapping[str, Any] | None = None,
                     force: bool = False) -> pathlib.Path:
  """Writes the flat state_dict; the manifest (if given) goes into the file's metadata."""
  from safetensors.torch import save_file  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(path)
  _check_writable(path, force)
  meta = {"format": "pt"}
  if manifest is not None:
    meta[SAFETENSORS_MANIFEST_KEY] = json.dumps(manifest, sort_keys=True)
  tmp = path.with_name(path.name + ".tmp")
  save_file({k: to_tensor(v) for k, v in state.items()}, str(tmp), metadata=meta)
  os.replace(tmp, path)
  return path
