"""`spectralgpt_jax.inference.load(path)` and the `embed` CLI on the real BigEarthNet patches."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
from rasterio import Affine
import torch

import export_helpers as H
import parity
from export_helpers import TINY_MAE
from spectralgpt_jax.__main__ import main as cli
from spectralgpt_jax.export import to_torch
from spectralgpt_jax.inference import load
from spectralgpt_jax.models import masking
from spectralgpt_jax.torch import create_model


@pytest.fixture(scope="module")
def loaded(trained_mae):
  return load(trained_mae[0])


def test_same_model_from_orbax_pth_and_safetensors(loaded, trained_mae, exported_pth, cubes32,
                                                   tmp_path):
  _, x = cubes32
  st = to_torch.export_checkpoint(trained_mae[0], tmp_path / "w.safetensors").weights
  emb = loaded.embed(x, normalize=False)
  assert emb.shape == (6, 64) and loaded.features(x, normalize=False).shape == (6, 64, 64)
  for path in (exported_pth, st):
    other = load(path)
    assert other.bands == loaded.bands and other.normalization == H.NORMALIZATION
    np.testing.assert_array_equal(other.embed(x, normalize=False), emb)


def test_features_are_the_unmasked_encoder_in_token_order(loaded, exported_pth, cubes32):
  _, x = cubes32
  twin = create_model(TINY_MAE)
  twin.load_state_dict(torch.load(exported_pth, weights_only=True)["model"])
  noise = np.tile(np.arange(64, dtype=np.float32), (6, 1))
  with torch.no_grad():
    latent_t, _, _ = twin.forward_encoder(torch.from_numpy(x), 0.0, noise=torch.from_numpy(noise))
  assert parity.rel_err(loaded.features(x, normalize=False, batch_size=4), latent_t) < 1e-5


def test_reconstruct_follows_the_official_convention(loaded, exported_pth, cubes32):
  _, x = cubes32
  twin = create_model(TINY_MAE)
  twin.load_state_dict(torch.load(exported_pth, weights_only=True)["model"])
  noise = np.random.default_rng(5).uniform(size=(6, 64)).astype(np.float32)
  out = loaded.reconstruct(x, mask_ratio=0.75, noise=noise, normalize=False,
                           batch_size=4)
  with torch.no_grad():
    loss_t, pred_t, mask_t = twin(torch.from_numpy(x), mask_ratio=0.75,
                                  noise=torch.from_numpy(noise))
  np.testing.assert_array_equal(out["mask"], mask_t.numpy())
  assert parity.rel_err(out["pred"], pred_t) < 1e-5
  assert abs(out["loss"] - float(loss_t)) < 1e-5 * float(loss_t)
  assert out["reconstruction"].shape == x.shape
  by_ratio = loaded.reconstruct(x[:2], mask_ratio=0.5, seed=1, normalize=False)
  assert (by_ratio["mask"].sum(1) == 64 - masking.num_kept(64, 0.5)).all()


def test_bands_are_checked_and_reordered_by_name(loaded, cubes32):
  raw, x = cubes32
  emb = loaded.embed(x, normalize=False)
  perm = np.random.default_rng(0).permutation(12)
  shuffled = [H.BANDS[i] for i in perm]
  np.testing.assert_array_equal(loaded.embed(x[:, perm], bands=shuffled, normalize=False), emb)
  with pytest.raises(ValueError, match=r"lacks bands \['B12'\]"):
    loaded.embed(x[:, :11], bands=H.BANDS[:11])
  with pytest.raises(ValueError, match="pass bands="):
    loaded.embed(x[:, :11])
  # Raw digital numbers normalized with the stored statistics equal the pre-normalized input.
  np.testing.assert_allclose(loaded.embed(raw), emb, rtol=1e-6, atol=1e-6)


def test_reconstruct_needs_an_mae(tmp_path, cubes32):
  model = H.build("vit_tiny_patch8_32")
  H.write_training_checkpoint(tmp_path, H.random_params(model),
                              model={"name": "vit_tiny_patch8_32"},
                              normalization={"mode": "zscore", "stats": "fmow_s2_official"})
  m = load(tmp_path)
  raw, _ = cubes32
  assert m.embed(raw).shape == (6, 64)
  with pytest.raises(ValueError, match="needs MAE"):
    m.reconstruct(raw)


def test_embed_cli_bigearthnet_folder_npy_and_geotiff_parquet(exported_pth, example_dir,
                                                              tmp_path, capsys):
  out = tmp_path / "emb.npy"
  assert cli(["embed", "--weights", str(exported_pth), "--input", str(example_dir),
              "--out", str(out), "--batch_size", "4"]) == 0
  emb = np.load(out)
  side = json.loads((tmp_path / "emb.npy.json").read_text())
  assert emb.shape == (6, 64) and len(side["rows"]) == 6 and side["normalized"]
  # The same first patch as a 12-band GeoTIFF with band names in its descriptions.
  raw, _ = H.real_cubes(example_dir, 32)
  tif = tmp_path / "tifs" / "a.tif"
  tif.parent.mkdir()
  with rasterio.open(tif, "w", driver="GTiff", width=32, height=32, count=12, dtype="float32",
                     crs="EPSG:32633", transform=Affine(37.5, 0, 5e5, 0, -37.5, 5e6)) as dst:
    dst.write(raw[0])
    dst.descriptions = tuple(H.BANDS)
  pq_out = tmp_path / "emb.parquet"
  assert cli(["embed", "--weights", str(exported_pth), "--input", str(tif.parent),
              "--out", str(pq_out)]) == 0
  table = pq.read_table(pq_out)
  assert table.column("source").to_pylist() == [str(tif)]
  np.testing.assert_allclose(np.asarray(table.column("embedding").to_pylist()), emb[:1],
                             rtol=1e-5, atol=1e-6)
  assert json.loads(table.schema.metadata[b"spectralgpt_jax"])["kind"] == "pooled"
  assert cli(["embed", "--weights", str(exported_pth), "--input", str(tif.parent),
              "--out", str(pq_out)]) == 1
  assert "exists" in capsys.readouterr().err
