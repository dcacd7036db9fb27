"""Export/import of wavelength-position weights: residual keys round-trip; table weights
import into a wavelength model with zero residuals."""

import jax
import numpy as np
import pytest

from spectralgpt_jax.export import from_torch, param_mapping
from spectralgpt_jax.models import get_model
from spectralgpt_jax.models.shapes import init_params

TINY = "mae_vit_tiny_patch8_32"


@pytest.mark.slow
def test_residual_keys_round_trip_and_table_weights_import_with_zeros():
  wave = get_model(TINY, spectral_positions="wavelength")
  params = jax.tree.map(np.asarray, init_params(wave, seed=2))
  params["pos_embed_spectral_residual"]["bias"] = np.full(64, 0.5, np.float32)
  state = param_mapping.flax_to_torch(params, wave.spec)
  keys = list(state)
  assert keys.index("pos_embed_spectral_residual.weight") == keys.index("pos_embed_date") + 1 \
      if "pos_embed_date" in keys else keys.index("pos_embed_temporal") + 1
  assert state["decoder_pos_embed_spectral_residual.weight"].shape == (32, 32)
  back = from_torch.convert_state_dict(state, TINY)          # option read from the keys
  assert back.record.get("spectral_positions") == "wavelength"
  np.testing.assert_array_equal(back.params["pos_embed_spectral_residual"]["bias"], 0.5)
  table_state = {k: v for k, v in state.items() if "spectral_residual" not in k}
  assert not any("spectral_residual" in k for k in param_mapping.flax_to_torch(
      init_params(get_model(TINY)), get_model(TINY).spec))   # absent with the option off
  into = from_torch.convert_state_dict(table_state, TINY,
                                       model_kwargs={"spectral_positions": "wavelength"})
  for key in ("pos_embed_spectral_residual", "decoder_pos_embed_spectral_residual"):
    assert not np.any(into.params[key]["kernel"]) and not np.any(into.params[key]["bias"])
  np.testing.assert_array_equal(into.params["pos_embed_temporal"], params["pos_embed_temporal"])
