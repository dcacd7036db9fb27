"""Pretraining on another sensor's shards: Landsat-like GeoTIFFs made from the real
BigEarthNet patches (7 Sentinel-2 bands named as Landsat OLI's B1..B7 in the band
descriptions) -> `ingest --sensor landsat8_oli` (names kept, OLI wavelengths in the manifest)
-> the data pipeline reads them by the OLI names -> the tiny MAE with wavelength positions."""

import json

import numpy as np
import pytest

from data_pipelines import bigearthnet, schema, sensors

# The OLI band of each Sentinel-2 band taken (USGS band designations; nearest centres).
OLI_FROM_S2 = {"B1": "B01", "B2": "B02", "B3": "B03", "B4": "B04", "B5": "B8A", "B6": "B11",
               "B7": "B12"}


def _landsat_tifs(example_dir, out):
  import rasterio  # pylint: disable=g-import-not-at-top
  out.mkdir()
  for folder in bigearthnet.list_bigearthnet_patches(example_dir):
    cube, meta = bigearthnet.read_bigearthnet_patch(folder)
    planes = np.stack([cube[list(meta["bands"]).index(s2)] for s2 in OLI_FROM_S2.values()])
    planes = np.clip(np.rint(planes), 0, 65535).astype(np.uint16)
    with rasterio.open(out / f"{folder.name}.tif", "w", driver="GTiff", count=len(planes),
                       height=planes.shape[1], width=planes.shape[2], dtype="uint16") as dst:
      dst.write(planes)
      for i, name in enumerate(OLI_FROM_S2, start=1):
        dst.set_band_description(i, name)
  return out


@pytest.fixture(scope="module")
def landsat_shards(example_dir, tmp_path_factory):
  from spectralgpt_jax.cli import ingest  # pylint: disable=g-import-not-at-top
  tmp = tmp_path_factory.mktemp("landsat")
  tifs = _landsat_tifs(example_dir, tmp / "tifs")
  out = tmp / "shards"
  assert ingest.main(["--source", "geotiff", "--input", str(tifs), "--out", str(out),
                      "--shards", "2", "--sensor", "landsat8_oli"]) == 0
  return out


def test_ingest_keeps_the_sensor_names_and_wavelengths(landsat_shards):
  manifest = json.loads((landsat_shards / "manifest.json").read_text())
  assert manifest["bands"] == list(OLI_FROM_S2) and manifest["sensor"] == "landsat8_oli"
  oli = {b.name: b for b in sensors.SENSORS["landsat8_oli"].bands}
  want = [{"name": n, "centre_nm": oli[n].centre_nm, "fwhm_nm": oli[n].fwhm_nm}
          for n in OLI_FROM_S2]
  assert manifest["band_wavelengths"] == want
  assert [w["centre_nm"] for w in want] == [440, 480, 560, 655, 865, 1610, 2200]  # USGS ranges


def test_other_sensors_names_are_band_names():
  assert schema.parse_band_list("B1,b001,nir") == ("B01", "b001", "nir")
  assert schema.parse_band_list("enmap_like")[-1] == "b224"
  assert schema.band_indices(["b001", "b002", "B1"], ["B01", "b002"]) == [2, 1]
  with pytest.raises(KeyError, match="b001"):
    schema.normalize_band_name("b001")              # never Sentinel-2's B01
  with pytest.raises(KeyError, match="B13"):
    schema.parse_band_list("B02,B13")


def test_ingest_refuses_a_band_the_sensor_lacks(example_dir, tmp_path, capsys):
  from spectralgpt_jax.cli import ingest  # pylint: disable=g-import-not-at-top
  tifs = _landsat_tifs(example_dir, tmp_path / "tifs")
  rc = ingest.main(["--source", "geotiff", "--input", str(tifs), "--out", str(tmp_path / "o"),
                    "--shards", "1", "--sensor", "planet_superdove"])
  assert rc != 0 and "'B1' has no known wavelength" in capsys.readouterr().err


@pytest.mark.slow
def test_pretraining_on_landsat_shards(landsat_shards):
  import jax  # pylint: disable=g-import-not-at-top
  from data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.sharding import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train import model_state, program  # pylint: disable=g-import-not-at-top
  from train_util import tiny  # pylint: disable=g-import-not-at-top
  c = tiny()
  with c.unlocked():
    c.data.source = "tfrecord"
    c.model.spectral_positions = "wavelength"
  c.data.paths, c.data.bands = str(landsat_shards), ",".join(OLI_FROM_S2)
  c.spectral.sensor, c.spectral.bands, c.spectral.mode = "landsat8_oli", "", "wavelength"
  c.spectral.bands = ",".join(OLI_FROM_S2)
  mesh = mesh_lib.make_mesh(c.mesh)
  prog = program.build_program(c, mesh)
  assert prog.batch_spec["cube"].shape[1] == 9    # 7 bands, the longest repeated to 3 groups
  batches = pipeline.make_iterator(c.data)
  host = next(iter(batches))
  assert host["cube"].shape[1] == 7
  x = prog.band_set.prepare(host["cube"])
  losses = []
  with jax.set_mesh(mesh):
    state = model_state.init_sharded(prog.model, prog.tx, jax.random.key(0), prog.shardings)
    for i in range(6):
      state, metrics = prog.train_step(state, {"cube": x}, jax.random.key(i))
      losses.append(float(metrics["loss"]))
  assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
