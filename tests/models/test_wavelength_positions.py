"""Wavelength-aware spectral positions: exact on Sentinel-2, any band set otherwise, dropped
groups honoured by the encoder (real BigEarthNet-S2 patches)."""

import jax
import numpy as np
import pytest

from data_pipelines import schema, sensors, spectral_resample
from spectralgpt_jax.inference.model import encoder_tokens
from spectralgpt_jax.models import get_model, masking, posembed, wavelengths
from spectralgpt_jax.models.mae import band_plan
from spectralgpt_jax.models.shapes import init_params

TINY = "mae_vit_tiny_patch8_32"


@pytest.fixture(scope="module")
def pair(cubes32):
  """(x [6, 12, 32, 32] real, table MAE, wavelength MAE, table params, wavelength params)."""
  x = cubes32[1][:2]
  table = get_model(TINY)
  wave = get_model(TINY, spectral_positions="wavelength")
  p_wave = jax.tree.map(np.asarray, init_params(wave, x[:1], seed=5))
  for key in ("pos_embed_spectral_residual", "decoder_pos_embed_spectral_residual"):
    assert not np.any(p_wave[key]["kernel"]) and not np.any(p_wave[key]["bias"])  # zero init
  # The table model's params: the same minus the residuals (as table weights imported with
  # zero residuals, export/from_torch).
  p_table = {k: v for k, v in p_wave.items() if "spectral_residual" not in k}
  return np.asarray(x), table, wave, p_table, p_wave


def test_s2_input_bit_identical_to_table_model(pair):
  x, table, wave, p_table, p_wave = pair
  noise = np.asarray(jax.random.uniform(jax.random.key(0), (2, 64)))
  a, _ = jax.jit(lambda p: table.apply({"params": p}, x, noise=noise, mask_ratio=0.75))(p_table)
  s2 = sensors.lookup("sentinel2_l2a", "spectralgpt")
  centres, fwhm = sensors.model_wavelengths(s2)
  b, _ = jax.jit(lambda p: wave.apply({"params": p}, x, noise=noise, mask_ratio=0.75,
                                      wavelengths=centres, fwhm=fwhm))(p_wave)
  assert np.array_equal(np.asarray(a), np.asarray(b))
  assert band_plan(wave.spec).centres == band_plan(wave.spec, centres, fwhm).centres  # default


def test_plan_interpolates_between_s2_group_centres():
  anchors = np.array(wavelengths.anchors(3))
  ref = np.array(wavelengths.S2_CENTRES).reshape(4, 3).mean(1)
  np.testing.assert_allclose(anchors, ref)
  # Bands whose group centre sits 30% of the way from anchor 1 to anchor 2.
  target = anchors[1] + 0.3 * (anchors[2] - anchors[1])
  plan = wavelengths.plan([target - 5, target, target + 5, 300, 310, 320, 2400, 2410, 2420],
                          None, 3)
  assert plan.lower == (1, 0, 2) and plan.upper == (2, 1, 3)
  np.testing.assert_allclose(plan.weight, [0.3, 0.0, 1.0], atol=1e-12)  # clamped outside


@pytest.mark.slow
def test_any_band_set_runs_and_positions_follow_wavelength(pair):
  x, _, wave, _, p_wave = pair
  bands = sensors.lookup("sentinel2_l2a", "B02,B03,B04,B08")     # RGBN: 4 bands
  prep = spectral_resample.prepare(x[:, [1, 2, 3, 7]], bands, "wavelength")
  assert [b.name for b in prep.bands] == ["B02", "B03", "B04", "B08", "B08", "B08"]
  noise = np.asarray(jax.random.uniform(jax.random.key(1), (2, 32)))
  pred, aux = wave.apply({"params": p_wave}, prep.cube, noise=noise, **prep.model_kwargs())
  assert pred.shape == (2, 32, 192) and aux["mask"].shape == (2, 32)
  assert np.isfinite(np.asarray(pred)).all()
  plan = band_plan(wave.spec, prep.wavelengths, prep.fwhm)
  temporal = p_wave["pos_embed_temporal"][0]
  w = np.array(plan.weight)[:, None]
  expect = temporal[list(plan.lower)] * (1 - w) + temporal[list(plan.upper)] * w
  got = wave.apply({"params": p_wave}, method=lambda m: posembed.at_wavelengths(
      m.pos_tables[1], plan, m.pos_embed_spectral_residual))
  np.testing.assert_allclose(np.asarray(got)[0], expect, rtol=1e-6, atol=1e-7)


def test_dropped_groups_are_never_kept(pair):
  x, table, _, p_table, _ = pair
  noise = np.asarray(jax.random.uniform(jax.random.key(2), (2, 64)))
  info = masking.random_masking(noise, 0.5, np.repeat([True, False, True, False], 16))
  keep = np.asarray(info.ids_keep)
  assert keep.shape == (2, 16) and np.all((keep // 16) % 2 == 1)
  assert np.asarray(info.mask).sum(1).tolist() == [48.0] * 2
  # Encoder features with group 1 dropped == plain random masking whose noise puts group 1
  # last at ratio 0.25 (the same 48 tokens kept, in grid order; no drop path involved).
  dropped = jax.jit(lambda p: encoder_tokens(table, p, x, drop_groups=(1,)))(p_table)
  noise = np.broadcast_to(np.arange(64, dtype=np.float32) + 100.0 * (np.arange(64) // 16 == 1),
                          (2, 64))
  latent, info = jax.jit(lambda p: table.apply({"params": p}, x, noise, 0.25,
                                               method="encode"))(p_table)
  np.testing.assert_array_equal(np.asarray(info.ids_keep)[0],
                                np.r_[np.arange(16), np.arange(32, 64)])
  assert dropped.shape == (2, 48, 64)
  np.testing.assert_array_equal(np.asarray(dropped), np.asarray(latent))


@pytest.mark.parametrize("call, needle", [
    (lambda: sensors.lookup("sentinel2", "B02,B03"), "2 band(s)"),
    (lambda: sensors.lookup("landsat8_oli", "B2,B3,B42"), "'B42'"),
    (lambda: sensors.check([sensors.Band("a", 500, 9, 1), sensors.Band("b", 500, 9, 1),
                            sensors.Band("c", 600, 9, 1)]), "band 'b' duplicates"),
    (lambda: sensors.model_wavelengths(sensors.lookup("landsat8_oli", "B2,B3,B4"), "table"),
     "band 'B2' (480.0 nm) at position 0"),
    (lambda: band_plan(get_model(TINY).spec, [440.0] + list(wavelengths.S2_CENTRES[1:])),
     "band 0 is 440.0 nm, not Sentinel-2 B01"),
])
def test_bad_band_input_is_one_line_naming_the_band(call, needle):
  with pytest.raises(ValueError) as e:
    call()
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_sensor_table_matches_model_reference():
  s2 = sensors.lookup("sentinel2_l2a", "spectralgpt")
  assert [b.name for b in s2] == list(schema.SPECTRALGPT_BANDS)
  assert tuple((b.name, b.centre_nm, b.fwhm_nm) for b in s2) == wavelengths.S2_REFERENCE


@pytest.mark.slow
def test_pretraining_on_a_non_s2_band_set_learns(pair):
  """A few MAE steps on a Landsat-like subset of the real bands: loss falls, the residual
  receives gradient, the decoder predicts every token of the 3 groups."""
  import optax
  from spectralgpt_jax import losses
  from spectralgpt_jax.models.mae import token_grid
  from spectralgpt_jax.models.patch_embed import patchify
  x, _, wave, _, p_wave = pair
  bands = sensors.lookup("sentinel2_l2a", "B02,B03,B04,B8A,B11,B12")
  prep = spectral_resample.prepare(x[:, [1, 2, 3, 8, 10, 11]], bands, "wavelength")
  kw = prep.model_kwargs()
  grid = token_grid(wave.spec, prep.cube.shape, band_plan(wave.spec, **{
      "centres": kw["wavelengths"], "fwhm": kw["fwhm"]}))
  assert grid == (2, 4, 4)
  target = patchify(prep.cube, 3, 8)
  tx = optax.adam(3e-3)

  @jax.jit
  def step(params, opt, key):
    def loss_fn(p):
      pred, aux = wave.apply({"params": p}, prep.cube, mask_ratio=0.5, rngs={"masking": key},
                             **kw)
      return losses.spectralgpt_loss(pred, target, aux["mask"], grid)[0]
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt, loss, grads

  params, opt, history = p_wave, tx.init(p_wave), []
  for i in range(10):
    params, opt, loss, grads = step(params, opt, jax.random.key(i))
    history.append(float(loss))
  assert np.abs(np.asarray(grads["pos_embed_spectral_residual"]["kernel"])).max() > 0
  assert np.mean(history[-3:]) < 0.8 * history[0], history
