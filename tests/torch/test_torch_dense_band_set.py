"""A change detector with wavelength positions built for a Landsat-like subset of the real
Sentinel-2 bands: its dense export names the residual `pos_embed_spectral_residual.*`, records
the band set, imports back exactly, and the PyTorch DenseModel loaded from it gives the JAX
outputs within 1e-5 on real OSCD tiles (rennes, both dates)."""

import jax
import numpy as np
import pytest

import dense_helpers as D
from data_pipelines import sensors
from spectralgpt_jax import inference
from spectralgpt_jax.export import dense_export, dense_mapping, from_torch, to_torch, torch_io

torch = pytest.importorskip("torch")
from spectralgpt_jax.torch import DenseModel, from_pretrained  # noqa: E402

SIZE = 32
LANDSAT = "B01,B02,B03,B04,B8A,B11,B12"   # the OLI-like subset of the Sentinel-2 bands


@pytest.fixture(scope="module")
def band_set():
  """(plane indices into the 12 SpectralGPT bands, names, centres, fwhm) in group order."""
  bands = sensors.lookup("sentinel2", LANDSAT)
  order = [bands[i] for i in sensors.group_bands(bands)]
  centres, fwhm = sensors.model_wavelengths(order)
  return [D.H.BANDS.index(b.name) for b in order], [b.name for b in order], centres, fwhm


@pytest.fixture(scope="module")
def rennes_tiles(oscd_root, band_set):
  from configs.eval import oscd
  from data_pipelines import dense
  test = oscd.get_config("tiny").evals.oscd.test_data
  test.paths, test.oscd.cities = str(oscd_root), "rennes"
  img = dense.load_dense_images(test)[0]
  assert list(img["bands"]) == list(D.H.BANDS)
  pick = band_set[0]
  return [np.stack([d[pick, i * SIZE:(i + 1) * SIZE, i * SIZE:(i + 1) * SIZE]
                    for i in range(2)]).astype(np.float32) for d in (img["cube"], img["cube2"])]


def test_residual_key_round_trips_and_loads_strictly_into_torch(band_set):
  _, _, centres, fwhm = band_set
  model = D.get_model(D.TINY_CD, spectral_positions="wavelength", wavelengths=centres,
                      fwhm=fwhm, img_size=SIZE, **D.TINY_HEAD)
  params = jax.tree.map(np.asarray, D.H.random_params(model, seed=3))
  state = dense_export.dense_params(params, model)
  assert state["pos_embed_spectral_residual.bias"].shape == (model.spec.embed_dim,)
  back = dense_mapping.torch_to_flax(state)
  np.testing.assert_array_equal(back["pos_embed_spectral_residual"]["kernel"],
                                params["pos_embed_spectral_residual"]["kernel"])
  net = DenseModel(**dense_export.torch_kwargs(model))
  net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
  assert net.fc[0].weight.shape == (1, 3)          # the band set's 3 groups, not S2's 4


@pytest.mark.slow
def test_landsat_like_change_detector_exports_imports_and_matches_torch(
    tmp_path, band_set, rennes_tiles):
  _, names, centres, fwhm = band_set
  run, params, model = D.write_dense_run(
      tmp_path, D.TINY_CD, img_size=SIZE, bands=names, spectral_positions="wavelength",
      wavelengths=list(centres), fwhm=list(fwhm))
  res = to_torch.export_checkpoint(run, tmp_path / "w.safetensors")
  state, _ = torch_io.load_state_dict(res.weights)
  np.testing.assert_array_equal(state["pos_embed_spectral_residual.weight"],
                                params["pos_embed_spectral_residual"]["kernel"].T)
  assert res.data["band_set"] == {"bands": names, "wavelengths": list(centres),
                                  "fwhm": list(fwhm)}
  assert res.data["model"]["wavelengths"] == list(centres) and not res.data["official_module"]

  conv, meta = from_torch.load_weights(res.weights)               # model from the manifest
  assert conv.record["wavelengths"] == list(centres) and meta["bands"] == names
  for path in (("pos_embed_spectral_residual", "kernel"), ("pos_embed_spectral_residual", "bias"),
               ("fc", "kernel"), ("pos_embed_temporal",)):
    got, want = conv.params, params
    for k in path:
      got, want = got[k], want[k]
    np.testing.assert_array_equal(np.asarray(got), want)

  ours = np.asarray(jax.jit(model.apply)({"params": params}, *rennes_tiles)).transpose(0, 3, 1, 2)
  loaded = inference.load(res.weights)      # the band set's planes, not Sentinel-2's 12
  np.testing.assert_allclose(loaded.dense_logits(*rennes_tiles), ours, rtol=0, atol=1e-5)
  net = from_pretrained(res.weights)
  assert isinstance(net, DenseModel) and net.bands == tuple(names)
  with torch.no_grad():
    theirs = net(*[torch.from_numpy(t) for t in rennes_tiles]).numpy()
  assert ours.shape == theirs.shape == (2, 2, SIZE, SIZE) and np.abs(ours).max() > 0.1
  np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
  with pytest.raises(ValueError, match="bands"):
    net(torch.zeros(1, 12, SIZE, SIZE), torch.zeros(1, 12, SIZE, SIZE))   # 12 planes
