"""The base variant (mae_vit_base_patch8_128): export from an orbax checkpoint loads strictly
into the twin of the official pretraining and fine-tuning modules. Forward parity at base size
on a real patch is @slow (the model-core tests already prove the mapping numerically)."""

import jax
import numpy as np
import pytest
import torch

import export_helpers as H
import parity
from spectralgpt_jax.export import to_torch
from spectralgpt_jax.models import get_model
from spectralgpt_jax.torch import create_model

BASE = "mae_vit_base_patch8_128"


def _strict(name: str, path, **kw) -> torch.nn.Module:
  twin = create_model(name, **kw)
  twin.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"],
                       strict=True)
  return twin.eval()


@pytest.mark.slow  # base size: tests/export runs the same export checks on the tiny MAE
def test_base_export_loads_strict_into_both_official_modules(tmp_path):
  model = get_model(BASE, scan=True)
  params = H.random_params(model, std=0.02)
  H.write_training_checkpoint(tmp_path / "run", params, model={"name": BASE, "scan": True})
  res = to_torch.export_checkpoint(tmp_path / "run", tmp_path / "base.pth")
  assert res.data["official_factory"] == BASE and res.data["official_factory_kwargs"] == {}
  assert res.data["weights"]["num_params"] == 98_640_320  # spec section 1.2
  twin = _strict(BASE, res.weights)
  got = twin.blocks[11].mlp.fc2.weight.detach().numpy()
  np.testing.assert_array_equal(got, params["blocks"]["layers"]["mlp"]["fc2"]["kernel"][11].T)
  del twin
  res = to_torch.export_checkpoint(tmp_path / "run", tmp_path / "ft.pth", target="finetune")
  assert res.data["official_factory"] == "vit_base_patch8_128"
  _strict("vit_base_patch8_128", res.weights)


@pytest.mark.slow
def test_base_mae_and_vit_export_match_twin_on_a_real_patch(example_dir, tmp_path):
  _, x = H.real_cubes(example_dir, 128)
  x = x[:1]
  model = get_model(BASE)
  params = H.init_params(model, x)
  H.write_training_checkpoint(tmp_path / "mae", params, model={"name": BASE})
  twin = _strict(BASE, to_torch.export_checkpoint(tmp_path / "mae", tmp_path / "m.pth").weights)
  noise = np.random.default_rng(0).uniform(size=(1, 1024)).astype(np.float32)
  pred, _ = jax.jit(lambda p: model.apply({"params": p}, x, noise=noise))(params)
  with torch.no_grad():
    _, pred_t, _ = twin(torch.from_numpy(x), mask_ratio=0.9, noise=torch.from_numpy(noise))
  assert parity.rel_err(pred, pred_t) < 1e-5
  vit = get_model("vit_base_patch8_128", pool="official_skip_first")
  vparams = H.random_params(vit, seed=1, std=0.02)
  record = {"name": "vit_base_patch8_128", "pool": "official_skip_first"}
  H.write_training_checkpoint(tmp_path / "vit", vparams, model=record)
  res = to_torch.export_checkpoint(tmp_path / "vit", tmp_path / "v.pth", target="finetune")
  vtwin = _strict("vit_base_patch8_128", res.weights, pool="official_skip_first")
  logits = jax.jit(lambda p: vit.apply({"params": p}, x))(vparams)
  with torch.no_grad():
    assert parity.rel_err(logits, vtwin(torch.from_numpy(x))) < 1e-5
