"""`embed --sensor --bands --spectral_mode`: a 4-band GeoTIFF (real BigEarthNet planes named as
Landsat OLI B2-B5) embedded through wavelength positions and resampling, against the same
steps done by hand (min-max, spectral_resample.prepare, the zero-residual encoder)."""

import numpy as np
import pytest

from data_pipelines import normalization, sensors, spectral_resample
from data_pipelines.readers import list_bigearthnet_patches, read_bigearthnet_patch
from spectralgpt_jax.__main__ import main as cli
from spectralgpt_jax.evaluation import band_input
from spectralgpt_jax.inference import fit_to_size, load
from spectralgpt_jax.inference.model import encoder_tokens

rasterio = pytest.importorskip("rasterio")
PLANES = ("B02", "B03", "B04", "B8A")   # written as Landsat OLI B2, B3, B4, B5


@pytest.fixture(scope="module")
def landsat_tif(example_dir, tmp_path_factory):
  cube, meta = read_bigearthnet_patch(list_bigearthnet_patches(example_dir)[0])
  four = cube[[list(meta["bands"]).index(b) for b in PLANES]].astype(np.uint16)
  path = tmp_path_factory.mktemp("landsat") / "oli.tif"
  with rasterio.open(path, "w", driver="GTiff", width=four.shape[2], height=four.shape[1],
                     count=4, dtype="uint16") as dst:
    dst.write(four)
  return path, four.astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["wavelength", "resample"])
def test_embed_a_landsat_band_set(trained_mae, landsat_tif, tmp_path, mode):
  path, four = landsat_tif
  out = tmp_path / f"{mode}.npy"
  assert cli(["embed", "--weights", str(trained_mae[0]), "--input", str(path), "--out",
              str(out), "--sensor", "landsat8_oli", "--bands", "B2,B3,B4,B5",
              "--spectral_mode", mode]) == 0
  model = load(trained_mae[0])
  bands = sensors.lookup("landsat8_oli", "B2,B3,B4,B5")
  x = normalization.minmax(fit_to_size(four[None], model.spec.img_size))
  prep = spectral_resample.prepare(x, bands, mode)
  enc = band_input.encoder_for(model, band_input.BandInput((), mode))
  want = np.asarray(encoder_tokens(enc.model, enc.params, prep.cube, **prep.model_kwargs()))
  got = np.load(out)
  assert got.shape == (1, model.spec.embed_dim)
  np.testing.assert_allclose(got, want.mean(axis=1), rtol=1e-5, atol=1e-6)
  if mode == "resample":   # Landsat B2-B5 leave S2 groups uncovered: dropped, not fed as 0
    assert prep.model_kwargs()["drop_groups"]
