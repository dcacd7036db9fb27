"""Helpers shared by the parity tests: a Flax model and its PyTorch twin with equal weights.

The twin is our own PyTorch package `spectralgpt_jax.torch` (not an independent implementation;
tests/models/test_parity.py says what agreement with it does and does not show)."""

from __future__ import annotations

import jax
import numpy as np
import torch

from spectralgpt_jax.export import param_mapping
from spectralgpt_jax.models import get_model, shapes
from spectralgpt_jax.torch import create_model


def init_params(model, x: np.ndarray, seed: int = 0) -> dict:
  return shapes.init_params(model, x, seed=seed)


def twin_with_params(name: str, params: dict, spec, **twin_kwargs) -> torch.nn.Module:
  """The twin factory `name` loaded with our params through the export mapping (strict)."""
  twin = create_model(name, **twin_kwargs)
  state = param_mapping.flax_to_torch(jax.tree.map(np.asarray, params), spec)
  twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
  return twin.eval()


def build_pair(name: str, batch: int = 2, seed: int = 0, **model_kwargs):
  """(flax model, params, twin, input cube numpy [B, C, H, W]) with identical weights."""
  model = get_model(name, **model_kwargs)
  spec = model.spec
  rng = np.random.default_rng(seed)
  x = rng.uniform(0, 1, (batch, spec.num_bands, spec.img_size, spec.img_size)).astype(np.float32)
  params = init_params(model, x, seed)
  twin_kwargs = {"t_patch_size": spec.t_patch} if "t_patch" in model_kwargs else {}
  if "pool" in model_kwargs:
    twin_kwargs["pool"] = model_kwargs["pool"]
  twin = twin_with_params(name, params, spec, **twin_kwargs)
  return model, params, twin, x


def rel_err(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-12))
