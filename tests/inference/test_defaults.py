"""Inference defaults on the real 120 px BigEarthNet patches: raw digital numbers are normalized
and resized to the model's size by default, the same way in Python and in the `embed` CLI."""

import warnings

import numpy as np
import pytest

import export_helpers as H
from data_pipelines import resample
from data_pipelines.readers import list_bigearthnet_patches, read_bigearthnet_patch
from spectralgpt_jax.__main__ import main as cli
from spectralgpt_jax.inference import load


@pytest.fixture(scope="module")
def loaded(trained_mae):
  return load(trained_mae[0])


@pytest.fixture(scope="module")
def patches(example_dir):
  """(raw DN cubes [6, 12, 120, 120], band names, folders) as the public reader returns them."""
  folders = list_bigearthnet_patches(example_dir)
  read = [read_bigearthnet_patch(f) for f in folders]
  return np.stack([c for c, _ in read]), read[0][1]["bands"], folders


def test_raw_patches_reconstruct_with_a_sane_loss_by_default(loaded, patches):
  raw, bands, _ = patches
  assert raw.shape == (6, 12, 120, 120) and raw.max() > 1000
  with warnings.catch_warnings():
    warnings.simplefilter("error")  # the default path warns about nothing
    out = loaded.reconstruct(raw, mask_ratio=0.9, bands=bands)
  assert out["input"].shape == (6, 12, 32, 32) and 0 <= out["input"].min() <= 1
  assert 0 < out["loss"] < 5, out["loss"]
  with pytest.warns(UserWarning, match=r"raw digital numbers \(median \|x\| [\d.e+]+ > 50, "
                    r"max [\d.e+]+\)"):
    unnormalized = loaded.reconstruct(raw, mask_ratio=0.9, normalize=False)
  assert unnormalized["loss"] > 1e5 * out["loss"]


def test_python_and_cli_embed_a_120px_patch_identically(loaded, exported_pth, patches, tmp_path):
  raw, bands, folders = patches
  out = tmp_path / "emb.npy"
  assert cli(["embed", "--weights", str(exported_pth), "--input", str(folders[0]),
              str(folders[1]), "--out", str(out)]) == 0
  python = loaded.embed(raw[:2], bands=bands)
  np.testing.assert_allclose(np.load(out), python, rtol=1e-5, atol=1e-6)
  resized = resample.resize_cube(raw[:2], 32)  # what the default does, by hand
  np.testing.assert_allclose(loaded.embed(resized, bands=bands), python, rtol=1e-6, atol=1e-7)
  at64 = tmp_path / "emb64.npy"  # an explicit size: the same flag name and meaning as Python's
  assert cli(["embed", "--weights", str(exported_pth), "--input", str(folders[0]),
              "--image_size", "64", "--out", str(at64)]) == 0
  np.testing.assert_allclose(np.load(at64), loaded.embed(raw[:1], bands=bands, image_size=64),
                             rtol=1e-5, atol=1e-6)
  assert not np.allclose(np.load(at64), python[:1], atol=1e-4)


def test_other_sizes_are_resized_or_run_at_an_explicit_size(loaded, patches):
  raw, bands, _ = patches
  at60 = resample.resize_cube(raw[:2], 60)
  assert loaded.embed(at60, bands=bands).shape == (2, 64)
  assert loaded.prepare(at60, bands=bands).shape == (2, 12, 32, 32)
  assert loaded.features(raw[:1], bands=bands, image_size=64).shape == (1, 4 * 8 * 8, 64)
  holed = raw[:1].copy()
  holed[0, 3, 10:20, 10:20] = np.nan  # resized 120 -> 32 with the hole zeroed afterwards
  prepared = loaded.prepare(holed, bands=bands, nonfinite="zero")
  assert np.isfinite(prepared).all() and (prepared[0, 3, 3:5, 3:5] == 0).all()
  with pytest.raises(ValueError, match="multiple of the patch size 8"):
    loaded.embed(at60, image_size=60)
  with pytest.raises(ValueError, match="resampling='lanczos'"):
    loaded.embed(at60, resampling="lanczos")


def test_reflectance_with_dn_statistics_warns(tmp_path, cubes32):
  model = H.build("vit_tiny_patch8_32")
  H.write_training_checkpoint(tmp_path, H.random_params(model),
                              model={"name": "vit_tiny_patch8_32"},
                              normalization={"mode": "zscore", "stats": "fmow_s2_official"})
  m = load(tmp_path)
  raw, _ = cubes32
  with pytest.warns(UserWarning, match=r"looks like reflectance .*units='reflectance'"):
    m.embed(raw / 10000.0)
  np.testing.assert_allclose(m.embed(raw / 10000.0, units="reflectance"), m.embed(raw),
                             rtol=1e-4, atol=1e-5)
