"""`config.spectral` (train/band_set.py): a run on another band set. The host batch's planes
are picked by name and prepared by the mode; the program's batch has the band set's planes;
a few real steps on a Landsat-like subset through wavelength positions and resampling (slow)."""

import numpy as np
import pytest

from data_pipelines import schema, sensors
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax.train import band_set, model_state, program
from train_util import tiny
from loss_reference import reference_loss_numpy
import export_helpers

HLS = "B02,B03,B04,B8A,B11,B12"


def _config(mode: str, bands: str = HLS, sensor: str = "sentinel2", positions="wavelength"):
  c = tiny()
  with c.unlocked():
    c.model.spectral_positions = positions
  c.spectral.sensor, c.spectral.bands, c.spectral.mode = sensor, bands, mode
  return c


def test_band_set_from_config_and_host_batches():
  assert band_set.from_config(tiny()) is None                  # the default: nothing changes
  bs = band_set.from_config(_config("wavelength"))
  assert bs.num_bands == 6 and len(bs.model_kwargs["wavelengths"]) == 6
  cube = np.random.default_rng(0).random((2, 12, 8, 8), np.float32)   # data.bands planes
  picked = [schema.SPECTRALGPT_BANDS.index(b) for b in HLS.split(",")]  # already by wavelength
  np.testing.assert_array_equal(bs.prepare(cube), cube[:, picked])
  rs = band_set.from_config(_config("resample"))
  assert rs.num_bands == 12 and rs.model_kwargs["drop_groups"]
  assert band_set.from_config(_config("wavelength", "", "enmap_like")).num_bands == 225
  with pytest.raises(ValueError, match="spectral_positions"):
    band_set.from_config(_config("wavelength", positions="table"))
  with pytest.raises(ValueError, match="b001"):   # hyperspectral names are not S2 names
    band_set.from_config(_config("wavelength", "", "enmap_like")).prepare(cube)


def test_program_batch_has_the_band_set_planes():
  c = _config("wavelength")
  prog = program.build_program(c, mesh_lib.make_mesh(c.mesh))
  assert prog.batch_spec["cube"].shape == (c.batch_size, 6, 32, 32)
  assert prog.band_set.bands == sensors.lookup("sentinel2", HLS)


def test_resample_loss_covers_the_kept_groups_only(cubes32):
  """Resampling a Landsat-like subset drops groups 1 and 2 (their planes are 0): the loss,
  both terms, equals the official loss of the kept groups' bands and tokens alone (NumPy)."""
  import jax  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train.tasks import mae  # pylint: disable=g-import-not-at-top
  c = _config("resample", "B01,B02,B03,B04,B8A,B11,B12")
  bs = band_set.from_config(c)
  assert bs.model_kwargs["drop_groups"] == (1, 2)
  model = export_helpers.build(export_helpers.TINY_MAE)
  x = bs.prepare(np.asarray(cubes32[1][:2], np.float32))
  params = export_helpers.random_params(model, seed=0)
  loss_fn = mae.make_loss_fn(model, mask_ratio=0.75, band_kwargs=bs.model_kwargs)
  loss, (terms, pred, mask) = jax.jit(loss_fn)(params, x, jax.random.key(2))
  hw = (32 // 8) ** 2
  kept_groups = [0, 3]
  tokens = np.concatenate([np.arange(g * hw, (g + 1) * hw) for g in kept_groups])
  planes = np.concatenate([np.arange(3 * g, 3 * g + 3) for g in kept_groups])
  assert np.all(np.asarray(x)[:, 3:9] == 0)       # the dropped groups' planes
  want, want_mse, want_spectral = reference_loss_numpy(
      x[:, planes], np.asarray(pred)[:, tokens], np.asarray(mask)[:, tokens], 3, 8)
  np.testing.assert_allclose(float(terms["loss_mse"]), want_mse, rtol=1e-5)
  np.testing.assert_allclose(float(terms["loss_spectral"]), want_spectral, rtol=1e-5)
  np.testing.assert_allclose(float(loss), want, rtol=1e-5)
  _, all_spectral = reference_loss_numpy(x, np.asarray(pred), np.asarray(mask), 3, 8)[1:]
  assert abs(all_spectral - want_spectral) > 1e-3 * want_spectral   # the term that changed


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["wavelength", "resample"])
def test_steps_on_a_landsat_band_set(mode, cubes32):
  import jax  # pylint: disable=g-import-not-at-top
  c = _config(mode, "B01,B02,B03,B04,B8A,B11,B12")
  mesh = mesh_lib.make_mesh(c.mesh)
  prog = program.build_program(c, mesh)
  x = np.asarray(cubes32[1], np.float32)
  x = np.concatenate([x] * (c.batch_size // len(x) + 1))[:c.batch_size]
  losses = []
  with jax.set_mesh(mesh):
    state = model_state.init_sharded(prog.model, prog.tx, jax.random.key(0), prog.shardings)
    for i in range(4):
      state, metrics = prog.train_step(state, {"cube": prog.band_set.prepare(x)},
                                       jax.random.key(i))
      losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all() and losses[-1] < losses[0], losses


def _dense_config(mode: str):
  from configs import common  # pylint: disable=g-import-not-at-top
  c = common.dense_config(model="cd_vit_tiny_patch8_32", recipe="oscd", source="oscd",
                          paths="unused", num_examples=8, batch_size=8, epochs=4,
                          image_size=32)
  c.model.update(dict(pyramid_channels=(32, 32, 64, 64), head_channels=32, pyramid_groups=8,
                      head_groups=8, spectral_positions="wavelength", drop_path_rate=0.0))
  c.dense.class_weights = (0.4, 1.96)
  c.spectral.sensor, c.spectral.bands, c.spectral.mode = "sentinel2", LANDSAT, mode
  return c


LANDSAT = "B01,B02,B03,B04,B8A,B11,B12"


def test_change_model_is_built_for_the_band_set():
  c = _dense_config("wavelength")
  prog = program.build_program(c, mesh_lib.make_mesh(c.mesh))
  assert prog.batch_spec["cube"].shape == prog.batch_spec["cube2"].shape == (8, 9, 32, 32)
  centres = [b.centre_nm for b in sensors.lookup("sentinel2", LANDSAT)] + [2190.0] * 2
  assert list(c.model.wavelengths) == list(prog.model.wavelengths) == centres  # in the record
  host = {"cube": np.ones((1, 12, 4, 4)), "cube2": np.zeros((1, 12, 4, 4)), "mask": 1}
  out = prog.band_set.prepare_batch(host)
  assert out["cube"].shape == out["cube2"].shape == (1, 9, 4, 4) and out["mask"] == 1
  with pytest.raises(ValueError, match="resample"):
    program.build_program(_dense_config("resample"), mesh_lib.make_mesh(c.mesh))


@pytest.mark.slow
def test_change_model_fine_tunes_on_a_landsat_band_set(cubes32):
  import jax  # pylint: disable=g-import-not-at-top
  c = _dense_config("wavelength")
  mesh = mesh_lib.make_mesh(c.mesh)
  prog = program.build_program(c, mesh)
  x = np.asarray(cubes32[1], np.float32)
  a, b = np.concatenate([x, x[:2]]), np.concatenate([x[::-1], x[:2]])
  change = (np.abs(a - b).mean(1) > 0.1).astype(np.int32)
  batch = prog.band_set.prepare_batch({"cube": a, "cube2": b, "mask": change})
  losses = []
  with jax.set_mesh(mesh):
    state = model_state.init_sharded(prog.model, prog.tx, jax.random.key(0), prog.shardings)
    for i in range(4):
      state, metrics = prog.train_step(state, batch, jax.random.key(i))
      losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
