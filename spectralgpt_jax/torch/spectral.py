"""Wavelength-aware spectral positions in PyTorch, the same math as the JAX model.

The host-side plan (which table rows a group of bands lies between, its weights and Fourier
features) comes from `spectralgpt_jax/models/wavelengths.py`, read as a file (standard library
only, no jax), so both frameworks compute it once and identically.
"""

from __future__ import annotations

import functools
import importlib.util
import pathlib
import sys
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

_WAVELENGTHS_FILE = pathlib.Path(__file__).resolve().parents[1] / "models" / "wavelengths.py"


def load_file_as_module(path: pathlib.Path, name: str) -> Any:
  """A standard-library-only source file of the JAX package (models/wavelengths.py,
  models/variants.py) as a module of its own, so this package reads the same definitions
  without importing jax."""
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module            # dataclasses resolves the module of its class here
  try:
    spec.loader.exec_module(module)
  finally:
    del sys.modules[name]
  return module


@functools.lru_cache(maxsize=None)
def wavelengths_module() -> Any:
  """models/wavelengths.py as a module (POSITION_MODES, S2_REFERENCE, plan, ...)."""
  return load_file_as_module(_WAVELENGTHS_FILE, "spectralgpt_jax.torch._wavelengths")


def residual(dim: int) -> nn.Linear:
  """The zero-initialised Linear(NUM_FEATURES, dim) of `*pos_embed_spectral_residual`."""
  layer = nn.Linear(wavelengths_module().NUM_FEATURES, dim)
  zero_(layer)
  return layer


def zero_(layer: nn.Linear) -> None:
  nn.init.zeros_(layer.weight)
  nn.init.zeros_(layer.bias)


def band_plan(spectral_positions: str, t_patch: int, centres: Sequence[float] | None,
              fwhm: Sequence[float] | None):
  """The group plan of the input bands, or None for the table (see the JAX `band_plan`)."""
  wl = wavelengths_module()
  if spectral_positions == "wavelength" and centres is None:
    centres, fwhm = wl.S2_CENTRES, wl.S2_FWHM
  if centres is None:
    return None
  if spectral_positions == "table":
    reason = wl.table_mismatch(centres)
    if reason:
      raise ValueError(reason)
    return None
  return wl.plan(centres, fwhm, t_patch)


def at_wavelengths(table: torch.Tensor, plan, layer: nn.Linear) -> torch.Tensor:
  """Spectral table [1, G_ref, D] -> [1, G, D] for the groups of `plan` (elementwise, as JAX)."""
  rows = table[0]
  w = torch.tensor(plan.weight, dtype=rows.dtype, device=rows.device)[:, None]
  lower = rows[torch.tensor(plan.lower, device=rows.device)]
  upper = rows[torch.tensor(plan.upper, device=rows.device)]
  feats = torch.from_numpy(np.asarray(plan.features, np.float32)).to(rows.device, rows.dtype)
  return (lower * (1 - w) + upper * w + layer(feats))[None]


def kept_tokens(groups: int, per_group: int, drop_groups: Sequence[int]) -> torch.Tensor | None:
  """Indices of the tokens outside `drop_groups` (None when none are dropped)."""
  if not drop_groups:
    return None
  bad = [g for g in drop_groups if not 0 <= g < groups]
  if bad or len(set(drop_groups)) == groups:
    raise ValueError(f"drop_groups {list(drop_groups)}: need indices in 0..{groups - 1} and "
                     "at least one group kept")
  keep = np.ones((groups, per_group), bool)
  keep[list(drop_groups)] = False
  return torch.from_numpy(np.flatnonzero(keep.reshape(-1)))
