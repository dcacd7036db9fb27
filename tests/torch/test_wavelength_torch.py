"""The PyTorch MAE takes wavelengths= like the JAX model: same outputs within 1e-5 on a
non-Sentinel-2 band set and with dropped groups, through the export mapping."""

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from data_pipelines import sensors, spectral_resample  # noqa: E402
from spectralgpt_jax.export import param_mapping  # noqa: E402
from spectralgpt_jax.models import get_model  # noqa: E402
from spectralgpt_jax.models.shapes import init_params  # noqa: E402
from spectralgpt_jax.torch import create_model  # noqa: E402


@pytest.mark.slow
def test_jax_and_torch_agree_on_landsat_like_bands():
  model = get_model("mae_vit_tiny_patch8_32", spectral_positions="wavelength")
  params = jax.tree.map(np.asarray, init_params(model, seed=1))
  rng = np.random.default_rng(0)
  for key in ("pos_embed_spectral_residual", "decoder_pos_embed_spectral_residual"):
    params[key] = {k: rng.normal(0, 0.02, v.shape).astype(np.float32)    # a trained residual
                   for k, v in params[key].items()}
  state = param_mapping.flax_to_torch(params, model.spec)
  assert state["pos_embed_spectral_residual.weight"].shape == (64, 32)
  tm = create_model("mae_vit_tiny_patch8_32", spectral_positions="wavelength").eval()
  tm.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
  bands = sensors.lookup("landsat8_oli", "B1,B2,B3,B4,B5,B6,B7")
  cube = rng.normal(size=(2, 7, 32, 32)).astype(np.float32)
  prep = spectral_resample.prepare(cube, bands, "wavelength")                 # 9 planes
  kw = prep.model_kwargs()
  order = np.broadcast_to(np.arange(48, dtype=np.float32), (2, 48))
  jax_tokens, _ = model.apply({"params": params}, prep.cube, order, 0.0, method="encode", **kw)
  with torch.no_grad():
    torch_tokens = tm.encode(torch.from_numpy(prep.cube), **kw).numpy()
  np.testing.assert_allclose(torch_tokens, np.asarray(jax_tokens), atol=1e-5, rtol=1e-5)
  jax_drop, _ = model.apply({"params": params}, prep.cube, order, 0.0, method="encode",
                            drop_groups=(1,), **kw)
  with torch.no_grad():
    torch_drop = tm.encode(torch.from_numpy(prep.cube), drop_groups=(1,), **kw).numpy()
  assert torch_drop.shape == (2, 32, 64)
  np.testing.assert_allclose(torch_drop, np.asarray(jax_drop), atol=1e-5, rtol=1e-5)
