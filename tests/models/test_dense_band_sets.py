"""Segmenters and change detectors with wavelength positions: the band set is fixed at build
time (its number of spectral groups sets `fc` / the pangaea channels). On the real Sentinel-2
patches the outputs equal the table model's bit for bit (its params plus zero residuals); a
Landsat-like subset builds, runs and fine-tunes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import export_helpers as H
from data_pipelines import sensors
from spectralgpt_jax import losses
from spectralgpt_jax.models import get_model

TINY_HEAD = dict(pyramid_channels=(32, 32, 64, 64), head_channels=32, pyramid_groups=8,
                 head_groups=8, img_size=32, dtype=jnp.float32)
LANDSAT = "B01,B02,B03,B04,B8A,B11,B12"   # the OLI-like subset of the Sentinel-2 bands


def _landsat_band_set():
  bands = sensors.lookup("sentinel2", LANDSAT)
  order = sensors.group_bands(bands)
  centres, fwhm = sensors.model_wavelengths([bands[i] for i in order])
  return order, centres, fwhm


def _with_zero_residual(params, model):
  shapes = H.random_params(model, seed=0)["pos_embed_spectral_residual"]
  return {**params, "pos_embed_spectral_residual": jax.tree.map(np.zeros_like, shapes)}


def test_sentinel2_encoder_tokens_equal_the_table_model(cubes32):
  _, x = cubes32
  table = get_model("seg_vit_tiny_patch8_32", **TINY_HEAD)
  wave = get_model("seg_vit_tiny_patch8_32", spectral_positions="wavelength", **TINY_HEAD)
  params = H.random_params(table, seed=1, std=0.2)
  encode = lambda m, p: jax.jit(lambda v: m.apply({"params": p}, v, method="encode")[0])(x[:2])
  np.testing.assert_array_equal(np.asarray(encode(wave, _with_zero_residual(params, wave))),
                                np.asarray(encode(table, params)))


@pytest.mark.slow
@pytest.mark.parametrize("name,head", [("seg_vit_tiny_patch8_32", "official"),
                                       ("cd_vit_tiny_patch8_32", "official"),
                                       ("seg_vit_tiny_patch8_32", "pangaea")])
def test_sentinel2_outputs_equal_the_table_model(name, head, cubes32):
  _, x = cubes32                                  # real BigEarthNet patches, min-max scaled
  kw = dict(head=head, feature_layers=(0, 1, 1, 1), **TINY_HEAD)
  table = get_model(name, **kw)
  wave = get_model(name, spectral_positions="wavelength", **kw)
  params = H.random_params(table, seed=1, std=0.2)
  dates = (x[:2], x[2:4]) if name.startswith("cd") else (x[:2],)
  want = np.asarray(jax.jit(table.apply)({"params": params}, *dates))
  got = np.asarray(jax.jit(wave.apply)({"params": _with_zero_residual(params, wave)}, *dates))
  np.testing.assert_array_equal(got, want)


def test_landsat_band_set_sets_the_heads_input(cubes32):
  order, centres, fwhm = _landsat_band_set()
  assert len(centres) == 9                        # 7 bands, the longest repeated: 3 groups
  kw = dict(spectral_positions="wavelength", wavelengths=centres, fwhm=fwhm, **TINY_HEAD)
  cd = get_model("cd_vit_tiny_patch8_32", **kw)
  shapes = H.random_params(cd)
  assert shapes["fc"]["kernel"].shape == (3, 1)   # 3 groups fused, not the 4 of Sentinel-2
  seg = get_model("seg_vit_tiny_patch8_32", head="pangaea", feature_layers=(0, 1, 1, 1), **kw)
  x = cubes32[1][:1][:, [H.BANDS.index(b) for b in LANDSAT.split(",")]][:, list(order)]
  out = jax.eval_shape(seg.apply, {"params": H.random_params(seg)}, x)
  assert out.shape == (1, 32, 32, seg.spec.num_classes)
  with pytest.raises(ValueError, match="bands"):
    jax.eval_shape(seg.apply, {"params": H.random_params(seg)}, cubes32[1][:1])  # 12 planes
  with pytest.raises(ValueError, match="spectral_positions='wavelength'"):
    H.random_params(get_model("seg_vit_tiny_patch8_32", wavelengths=centres, **TINY_HEAD))


@pytest.mark.slow
def test_change_detector_fine_tunes_on_a_landsat_subset(cubes32):
  import optax  # pylint: disable=g-import-not-at-top
  order, centres, fwhm = _landsat_band_set()
  model = get_model("cd_vit_tiny_patch8_32", spectral_positions="wavelength",
                    wavelengths=centres, fwhm=fwhm, drop_path_rate=0.0, dropout=0.0,
                    **TINY_HEAD)
  pick = [H.BANDS.index(b) for b in LANDSAT.split(",")]
  x = cubes32[1][:, pick][:, list(order)]
  a, b = x[:2], x[[3, 2]]
  labels = (np.abs(a - b).mean(1) > np.median(np.abs(a - b).mean(1))).astype(np.int32)
  params = H.random_params(model, seed=2)
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt):
    loss_fn = lambda p: losses.pixel_cross_entropy(model.apply({"params": p}, a, b), labels)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt, loss

  seen = []
  for _ in range(8):
    params, opt, loss = step(params, opt)
    seen.append(float(loss))
  assert np.isfinite(seen).all() and seen[-1] < seen[0], seen
