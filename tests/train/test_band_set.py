"""`config.spectral` (train/band_set.py): a run on another band set. The host batch's planes
are picked by name and prepared by the mode; the program's batch has the band set's planes;
a few real steps on a Landsat-like subset through wavelength positions and resampling (slow)."""

import numpy as np
import pytest

from data_pipelines import schema, sensors
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax.train import band_set, model_state, program
from train_util import tiny

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
