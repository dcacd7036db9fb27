"""What a weights file is, for the JAX side (`export`, `inference`) and the PyTorch side
(`spectralgpt_jax.torch`) alike: imports no jax and no project module, and torch only inside
`load_pth`, so both sides read one definition.

  manifest     the JSON that travels with exported weights: `<weights>.json` beside the file
               (and, in a .safetensors file, its metadata under SAFETENSORS_MANIFEST_KEY);
               FORMAT / MANIFEST_VERSION and `check_manifest` say which files are ours
  .pth         `load_pth`: torch's weights-only unpickler, with only `argparse.Namespace`
               allowed (the official checkpoints store their `args` with it); `unwrap_state_dict`
               finds the state_dict inside a training-state wrapper ({'model': ...})
The manifest's contents are written by `spectralgpt_jax.export.manifest.build_manifest`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import pickle
from typing import Any, Mapping

FORMAT = "spectralgpt-jax-weights"
MANIFEST_VERSION = 1
# Key under which our safetensors files carry the manifest (safetensors metadata is str -> str).
SAFETENSORS_MANIFEST_KEY = "spectralgpt_jax_manifest"
PTH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIXES = (".safetensors",)
# Wrapper keys of whole-training-state files, in lookup order ("model" is the official one).
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "params")
# A DistributedDataParallel state_dict prefixes every key with this.
DDP_PREFIX = "module."

# What the official pretraining fed the model: per-image, per-band min-max to [0, 1]. The
# normalization record of official weights, which come without a manifest. Modes are
# data_pipelines.normalization.NORMALIZATIONS: minmax, zscore, sentinel_clip, none.
OFFICIAL_NORMALIZATION = {
    "mode": "minmax", "eps": 1e-10, "units": "DN",
    "provenance": "official SpectralGPT pretraining (fMoW-Sentinel, BigEarthNet): "
                  "(x - min_hw) / (max_hw - min_hw + eps) per image and band"}


class UnsafeCheckpointError(ValueError):
  """A .pth file needs globals beyond tensors, containers and argparse.Namespace."""


class CorruptWeightsError(ValueError):
  """A weight file cannot be read (truncated, not the format its suffix says) or holds
  non-finite values; the message names the file (and the tensor)."""


# ------------------------------------------------------------------------------ manifest

def manifest_path(weights: str | os.PathLike) -> pathlib.Path:
  """`model.pth` -> `model.pth.json` (so a .pth and a .safetensors never share one)."""
  weights = pathlib.Path(weights)
  return weights.with_name(weights.name + ".json")


def check_manifest(data: Any, where: object = "manifest") -> None:
  """Raises ValueError naming `where` unless `data` is a manifest this package understands."""
  if not isinstance(data, Mapping) or data.get("format") != FORMAT:
    raise ValueError(f"{where}: not a {FORMAT} manifest")
  if int(data.get("manifest_version", 0)) > MANIFEST_VERSION:
    raise ValueError(f"{where}: manifest version {data['manifest_version']} is newer than "
                     f"this package understands ({MANIFEST_VERSION}); upgrade spectralgpt_jax")
  for key in ("model", "target", "bands"):
    if key not in data:
      raise ValueError(f"{where}: manifest lacks {key!r}")


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
  """Reads and checks a manifest; raises ValueError naming the file on a foreign format."""
  path = pathlib.Path(path)
  try:
    data = json.loads(path.read_text())
  except (OSError, ValueError) as e:
    raise ValueError(f"{path}: unreadable manifest: {e}") from e
  check_manifest(data, path)
  return data


def find_manifest(weights: str | os.PathLike) -> dict[str, Any] | None:
  """The sidecar manifest of a weights file, if there is one."""
  path = manifest_path(weights)
  return read_manifest(path) if path.is_file() else None


def embedded_manifest(metadata: Mapping[str, str] | None,
                      where: object = "safetensors metadata") -> dict[str, Any] | None:
  """The manifest a .safetensors file carries in its metadata (parsed, not checked: see
  check_manifest); None if it has none."""
  text = (metadata or {}).get(SAFETENSORS_MANIFEST_KEY)
  if text is None:
    return None
  try:
    data = json.loads(text)
  except ValueError as e:
    raise ValueError(f"{where}: unreadable embedded manifest: {e}") from e
  return data


# ------------------------------------------------------------------------------ .pth files

def unreadable(path: pathlib.Path, e: BaseException) -> CorruptWeightsError:
  """The error for a weights file that cannot be parsed (first line of the cause)."""
  first = (str(e).strip().splitlines() or [""])[0][:200]
  return CorruptWeightsError(f"{path}: unreadable weight file ({type(e).__name__}: {first}); "
                             "it may be truncated or damaged: download or export it again")


def load_pth(path: str | os.PathLike) -> Any:
  """torch.load on CPU with weights_only=True; only argparse.Namespace is allow-listed.

  Raises:
    FileNotFoundError; UnsafeCheckpointError naming the file and every disallowed global;
    CorruptWeightsError for a file torch cannot parse.
  """
  import torch  # pylint: disable=g-import-not-at-top  (only .pth reading needs torch)
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
    raise unreadable(path, e) from e


def unwrap_state_dict(obj: Any, path: object = "checkpoint"
                      ) -> tuple[dict[str, Any], Mapping[str, Any]]:
  """A loaded .pth object -> (state_dict with any DDP `module.` prefix stripped, the wrapper).

  Accepts a bare state_dict or a wrapper dict ({'model': sd, 'args', 'epoch', ...}, the first
  of WRAPPER_KEYS holding a dict); the wrapper is {} for a bare state_dict. Values are passed
  through unchecked. Raises ValueError naming `path` when no state_dict is found.
  """
  state, wrapper = obj, {}
  if isinstance(obj, Mapping):
    for key in WRAPPER_KEYS:
      if key in obj and isinstance(obj[key], Mapping):
        state, wrapper = obj[key], obj
        break
  if not isinstance(state, Mapping) or not state:
    raise ValueError(f"{path}: no state_dict found (expected a dict of tensors, optionally "
                     f"under one of {WRAPPER_KEYS})")
  out = {(k[len(DDP_PREFIX):] if k.startswith(DDP_PREFIX) else k): v for k, v in state.items()}
  return out, wrapper
