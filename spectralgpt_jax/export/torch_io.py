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
import pickle
from typing import Any, Mapping

import ml_dtypes
import numpy as np

# Key under which our safetensors files carry the manifest (safetensors metadata is str -> str).
SAFETENSORS_MANIFEST_KEY = "spectralgpt_jax_manifest"
PTH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIXES = (".safetensors",)
# Wrapper keys of whole-training-state files, in lookup order ("model" is the official one).
_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "params")


class UnsafeCheckpointError(ValueError):
  """A .pth file needs globals beyond tensors, containers and argparse.Namespace."""


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


class CorruptWeightsError(ValueError):
  """A weight file cannot be read (truncated, not the format its suffix says) or holds
  non-finite values; the message names the file (and the tensor)."""


def _unreadable(path: pathlib.Path, e: BaseException) -> CorruptWeightsError:
  first = (str(e).strip().splitlines() or [""])[0][:200]
  return CorruptWeightsError(f"{path}: unreadable weight file ({type(e).__name__}: {first}); "
                             "it may be truncated or damaged: download or export it again")


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


def load_pth(path: str | os.PathLike) -> Any:
  """torch.load on CPU with weights_only=True; only argparse.Namespace is allow-listed.

  Raises:
    FileNotFoundError; UnsafeCheckpointError naming the file and every disallowed global.
  """
  torch = _torch()
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{path}: no such file")
  try:
    with torch.serialization.safe_globals([argparse.Namespace]):
      try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
      except RuntimeError as e:  # legacy (non-zip) files cannot be memory-mapped
        if "mmap" not in str(e):
          raise
        return torch.load(path, map_location="cpu", weights_only=True)
  except pickle.UnpicklingError as e:
    try:
      bad = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # pylint: disable=broad-except
      bad = []
    bad = [g for g in bad if g != "argparse.Namespace"]
    raise UnsafeCheckpointError(
        f"{path}: refused to load. The file needs Python objects beyond tensors, plain "
        f"containers and argparse.Namespace: {bad or str(e).splitlines()[-1]}. Unpickling "
        "them could run arbitrary code; re-save the file as a plain state_dict (or "
        "safetensors) from an environment you trust.") from e
  except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError) as e:
    raise _unreadable(path, e) from e


def split_checkpoint(obj: Any, path: str | os.PathLike = "checkpoint"
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """A loaded .pth object -> (state_dict as numpy, extras).

  Accepts a bare state_dict or a wrapper dict ({'model': sd, 'args', 'epoch', ...}). A DDP
  `module.` prefix is stripped. Extras: epoch and args (as a JSON-able dict) when present.
  """
  torch = _torch()
  extras: dict[str, Any] = {}
  state = obj
  if isinstance(obj, Mapping):
    for key in _WRAPPER_KEYS:
      if key in obj and isinstance(obj[key], Mapping):
        state = obj[key]
        if "epoch" in obj and isinstance(obj["epoch"], (int, float)):
          extras["epoch"] = obj["epoch"]
        if isinstance(obj.get("args"), argparse.Namespace):
          extras["args"] = _jsonable(vars(obj["args"]))
        break
  if not isinstance(state, Mapping) or not state:
    raise ValueError(f"{path}: no state_dict found (expected a dict of tensors, optionally "
                     f"under one of {_WRAPPER_KEYS})")
  out = {}
  for key, value in state.items():
    if not isinstance(value, torch.Tensor):
      raise ValueError(f"{path}: state_dict entry {key!r} is a {type(value).__name__}, not a "
                       "tensor")
    name = key[len("module."):] if key.startswith("module.") else key
    out[name] = to_numpy(value)
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
  if SAFETENSORS_MANIFEST_KEY in meta:
    extras["manifest"] = json.loads(meta[SAFETENSORS_MANIFEST_KEY])
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
