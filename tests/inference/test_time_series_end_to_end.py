"""A time-series model end to end: train -> export -> import -> load -> embed, one embedding.

configs/pretrain/tiny_s2.py:dates=2 trains a 2-date MAE (date table of its own) on generated
series; its checkpoint, the exported official-layout file (dates folded into the spectral
table) and that file imported back as a run must all embed a [B, T, C, H, W] batch alike, and
alike to applying the trained parameters directly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.pretrain import tiny_s2
from data_pipelines import absl_flags
from spectralgpt_jax import checkpoints
from spectralgpt_jax.export import from_torch, to_torch
from spectralgpt_jax.inference import load
from spectralgpt_jax.models import get_model
from spectralgpt_jax.models.transformer import to_unrolled
from spectralgpt_jax.train import loop


def _direct_embedding(params, x):
  """Mean of the encoder's tokens over an unmasked series, straight from the Flax module."""
  model = get_model("mae_vit_tiny_patch8_32", num_dates=2)
  n = 2 * 4 * (x.shape[-1] // 8) ** 2
  noise = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32), (x.shape[0], n))
  latent = model.apply({"params": params}, jnp.asarray(x), noise, 0.0, method="encode")[0]
  return np.asarray(latent.mean(axis=1))


@pytest.mark.slow  # train, export, import and load of a dated model (~24 s)
def test_two_date_model_train_export_import_load_embed(tmp_path):
  absl_flags.ensure_parsed()
  config = tiny_s2.get_config("dates=2,size=32")
  config.total_steps, config.checkpoint.every_steps = 2, 2
  config.log.panel_every_steps = 2  # panels of a series too
  run = tmp_path / "run"
  last = loop.train(config, str(run))
  assert last["step"] == 2 and np.isfinite(last["loss"])
  assert (run / "panels" / "step_0000002.png").is_file()

  exported = to_torch.export_checkpoint(run, tmp_path / "tiny_dates.safetensors")
  assert exported.data["model"]["num_dates"] == 2
  assert exported.data["constructor_kwargs"]["num_frames"] == 24  # official layout: T*C bands
  from_torch.import_file(exported.weights, tmp_path / "imported")

  x = np.random.default_rng(0).uniform(size=(3, 2, 12, 32, 32)).astype(np.float32)
  params = to_unrolled(checkpoints.read_checkpoint(run).params)
  want = _direct_embedding(params, x)
  for source in (run, exported.weights, tmp_path / "imported"):
    model = load(source)
    assert model.spec.num_dates == 2, source
    np.testing.assert_allclose(model.embed(x, normalize=False), want, atol=1e-6, rtol=0, err_msg=str(source))
  jax.clear_caches()
