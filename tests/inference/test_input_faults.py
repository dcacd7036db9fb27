"""Bad inputs to inference and bad weight files: NaN/Inf cubes, a tile with the wrong planes
among good ones, truncated and NaN-holding weight files. Each error names the file (and the
example, band and position, or the tensor) in one line."""

import numpy as np
import pytest
import rasterio
from rasterio import Affine

import export_helpers as H
from spectralgpt_jax.__main__ import main as cli
from spectralgpt_jax.export import to_torch, torch_io
from spectralgpt_jax.inference import load


@pytest.fixture(scope="module")
def weights(fresh_mae, tmp_path_factory):
  out = tmp_path_factory.mktemp("w") / "tiny.safetensors"
  return to_torch.export_checkpoint(fresh_mae[0], out).weights


@pytest.fixture(scope="module")
def model(weights):
  return load(weights)


def test_nonfinite_input_names_example_band_and_position(model, cubes32):
  raw, x = cubes32
  x = x.copy()
  x[4, 7, 5, 9] = np.nan
  with pytest.raises(ValueError, match=rf"example 4, band {model.bands[7]} \(index 7\), "
                     r"position \(row 5, col 9\)"):
    model.embed(x, normalize=False)
  emb = model.embed(x, normalize=False, nonfinite="zero")
  assert np.isfinite(emb).all()
  x[4, 7, 5, 9] = 0.0
  np.testing.assert_array_equal(emb, model.embed(x, normalize=False))
  raw = raw.copy()
  raw[0, 0, 0, 0] = np.inf
  with pytest.raises(ValueError, match="example 0"):
    model.embed(raw)


def _tif(path, cube, names):
  with rasterio.open(path, "w", driver="GTiff", width=cube.shape[-1], height=cube.shape[-2],
                     count=cube.shape[0], dtype="float32", crs="EPSG:32633",
                     transform=Affine(37.5, 0, 5e5, 0, -37.5, 5e6)) as dst:
    dst.write(cube.astype(np.float32))
    dst.descriptions = tuple(names)


def _one_error_line(capsys) -> str:
  err = [l for l in capsys.readouterr().err.strip().splitlines() if l]
  assert len(err) == 1, err
  return err[0]


def test_embed_names_the_tile_with_wrong_planes(weights, cubes32, tmp_path, capsys):
  raw, _ = cubes32
  folder = tmp_path / "tifs"
  folder.mkdir()
  _tif(folder / "a.tif", raw[0], H.BANDS)
  _tif(folder / "b.tif", raw[1][:11], H.BANDS[:11])   # 11 planes among good ones
  _tif(folder / "c.tif", raw[2], H.BANDS)
  rc = cli(["embed", "--weights", str(weights), "--input", str(folder),
            "--out", str(tmp_path / "e.npy")])
  assert rc == 1
  line = _one_error_line(capsys)
  assert str(folder / "b.tif") in line and "lacks bands" in line, line


def test_embed_names_the_tile_with_nan(weights, cubes32, tmp_path, capsys):
  raw, _ = cubes32
  folder = tmp_path / "tifs"
  folder.mkdir()
  bad = raw[1].astype(np.float32).copy()
  bad[3, 2, 1] = np.nan
  _tif(folder / "a.tif", raw[0], H.BANDS)
  _tif(folder / "b.tif", bad, H.BANDS)
  out = tmp_path / "e.npy"
  assert cli(["embed", "--weights", str(weights), "--input", str(folder), "--out", str(out),
              "--resampling", "nearest"]) == 1
  line = _one_error_line(capsys)
  assert str(folder / "b.tif") in line and "non-finite" in line, line   # the reader's check


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_weight_file_is_one_error_naming_it(weights, fresh_mae, tmp_path, capsys,
                                                      suffix):
  src = weights if suffix == ".safetensors" else to_torch.export_checkpoint(
      fresh_mae[0], tmp_path / "full.pth").weights
  cut = tmp_path / f"cut{suffix}"
  data = src.read_bytes()
  cut.write_bytes(data[:len(data) // 2])
  with pytest.raises(torch_io.CorruptWeightsError, match=str(cut)):
    load(cut)
  assert cli(["import", "--weights", str(cut), "--workdir", str(tmp_path / "run")]) == 1
  line = _one_error_line(capsys)
  assert str(cut) in line and "unreadable weight file" in line, line


def test_nan_in_imported_weights_names_the_tensor(weights, tmp_path, capsys):
  state, _ = torch_io.load_state_dict(weights)
  key = sorted(state)[3]
  state[key] = state[key].copy()
  state[key].reshape(-1)[2] = np.nan
  bad = tmp_path / "nan.safetensors"
  torch_io.save_safetensors(state, bad)
  with pytest.raises(torch_io.CorruptWeightsError, match=f"tensor '{key}'"):
    load(bad)
  assert cli(["import", "--weights", str(bad), "--workdir", str(tmp_path / "run")]) == 1
  line = _one_error_line(capsys)
  assert key in line and str(bad) in line, line
