"""A model with a date axis (num_dates > 1) through export -> import -> load -> embed."""

import jax.numpy as jnp
import numpy as np

import export_helpers as H
from export_helpers import TINY_MAE
from spectralgpt_jax import checkpoints
from spectralgpt_jax.export import from_torch, param_mapping, to_torch
from spectralgpt_jax.inference import load
from spectralgpt_jax.models import get_model

KWARGS = {"num_bands": 6, "num_dates": 2, "img_size": 16}
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]


def _embed(model, params, x):
  """Reference embedding: the encoder on every token (no masking), mean over tokens."""
  n = x.shape[1] * (x.shape[2] // model.spec.t_patch) * (x.shape[3] // model.spec.patch) ** 2
  noise = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32), (x.shape[0], n))
  return np.asarray(model.apply({"params": params}, x, noise, 0.0, method="encode")[0].mean(1))


def test_dated_model_round_trips_through_the_official_layout(tmp_path):
  model = get_model(TINY_MAE, **KWARGS)
  params = H.random_params(model, seed=3)
  meta = {"model": {"name": TINY_MAE, **KWARGS}, "bands": BANDS, "normalization": None}
  checkpoints.write_checkpoint(tmp_path / "run" / "checkpoints", params, meta, step=1)
  res = to_torch.export_checkpoint(tmp_path / "run", tmp_path / "w.safetensors")
  man = res.data
  assert man["model"]["num_dates"] == 2 and man["constructor_kwargs"]["num_frames"] == 12
  assert any("dates folded" in n for n in man["notes"])
  x = np.random.default_rng(0).uniform(size=(3, 2, 6, 16, 16)).astype(np.float32)
  m = load(res.weights)
  assert m.spec.num_dates == 2 and m.bands == tuple(BANDS)
  want = _embed(model, params, jnp.asarray(x))
  np.testing.assert_allclose(m.embed(x, normalize=False), want, atol=1e-6, rtol=0)
  np.testing.assert_allclose(m.embed(x[0], normalize=False), want[:1], atol=1e-6, rtol=0)
  assert m.features(x, normalize=False).shape == (3, 2 * 2 * 4, 64)
  out = m.reconstruct(x, mask_ratio=0.5, normalize=False)
  assert out["reconstruction"].shape == x.shape and np.isfinite(out["loss"])


def test_unstructured_temporal_table_imports_folded():
  model = get_model(TINY_MAE, **KWARGS)
  state, out_spec, _ = to_torch.export_params(H.random_params(model), model.spec)
  assert (out_spec.num_bands, out_spec.num_dates) == (12, 1)
  assert param_mapping.unfold_dates(state, 2) is not None
  state["pos_embed_temporal"] = state["pos_embed_temporal"] + np.random.default_rng(1).normal(
      size=state["pos_embed_temporal"].shape).astype(np.float32)
  conv = from_torch.convert_state_dict(state, TINY_MAE, model_kwargs=KWARGS)
  assert conv.record == {"name": TINY_MAE, "img_size": 16}  # 12 bands, 1 date: the defaults
  assert any("folded into the bands" in n for n in conv.notes)
  assert "pos_embed_date" not in conv.params


def test_fold_then_unfold_is_exact_on_the_sum():
  rng = np.random.default_rng(2)
  temporal, date = rng.normal(size=(1, 2, 8)), rng.normal(size=(1, 3, 8))
  folded = param_mapping.fold_dates({"pos_embed_temporal": temporal, "pos_embed_date": date})
  assert folded["pos_embed_temporal"].shape == (1, 6, 8) and "pos_embed_date" not in folded
  back = param_mapping.unfold_dates(folded, 3)
  again = param_mapping.fold_dates(back)
  np.testing.assert_allclose(again["pos_embed_temporal"], folded["pos_embed_temporal"],
                             atol=1e-12)
