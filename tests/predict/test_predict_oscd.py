"""`predict` against `evaluate` on the shipped OSCD test cities (slow: trains the run of
configs/eval/oscd.py:tiny): the change map written for each test city equals the one evaluate
saved for the same run, on the input's 10 m grid (CRS, transform, size of the B02 file), and
nodata input pixels come out as nodata. Also the command's one-line errors."""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import warnings

import numpy as np
import portpicker
import pytest

from configs.eval import oscd as oscd_config
from data_pipelines import oscd
from spectralgpt_jax.cli import predict as predict_cli
from spectralgpt_jax.evaluation import run_evals

rasterio = pytest.importorskip("rasterio")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def oscd_run(oscd_root, tmp_path_factory):
  """The evaluate workdir of configs/eval/oscd.py:tiny (trained on the four training cities,
  rennes and hongkong scored and saved)."""
  c = oscd_config.get_config("tiny")
  c.root = str(oscd_root)
  workdir = tmp_path_factory.mktemp("oscd_eval")
  run_evals(c, str(workdir))
  return workdir / "oscd", c.evals.oscd


def _read(path):
  with warnings.catch_warnings():   # evaluate's saved maps of OSCD carry no geotransform
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
    with rasterio.open(path) as f:
      return f.read(1), f.crs, f.transform, f.nodata


def _predict(run, inputs, out, *extra):
  return predict_cli.main(["--weights", str(run / "run"), "--input", *map(str, inputs),
                           "--out", str(out), "--no_progress", *extra])


@pytest.mark.parametrize("city", oscd_config.TEST_CITIES.split(","))
def test_predict_writes_the_change_map_evaluate_saved(oscd_run, oscd_root, city, tmp_path):
  run, block = oscd_run
  folder = oscd.images_dir(oscd_root) / city
  out = tmp_path / f"{city}.tif"
  tiles = ["--window", str(block.tile_size), "--stride", str(block.tile_stride),
           "--blend", "average"]
  assert _predict(run, [folder / "imgs_1", folder / "imgs_2"], out, *tiles) == 0
  got, crs, transform, nodata = _read(out)
  saved, _, _, _ = _read(run / "predictions" / f"{city}.tif")
  np.testing.assert_array_equal(got, saved)
  with rasterio.open(next((folder / "imgs_1").glob("*_B02.tif"))) as b02:
    assert (crs, transform, got.shape) == (b02.crs, b02.transform, (b02.height, b02.width))
  assert nodata == 255
  info = json.loads((tmp_path / f"{city}.tif.json").read_text())
  assert info["kind"] == "change" and info["blend"] == "average"


def test_nodata_pixels_come_out_nodata(oscd_run, oscd_root, tmp_path):
  run, block = oscd_run
  src = oscd.images_dir(oscd_root) / "rennes"
  dates = []
  for d in ("imgs_1", "imgs_2"):
    dst = tmp_path / d
    shutil.copytree(src / d, dst)
    dates.append(dst)
  b02 = next(dates[0].glob("*_B02.tif"))
  with rasterio.open(b02, "r+") as f:
    f.nodata = 0
    x = f.read(1)
    x[100:120, 200:260] = 0
    f.write(x, 1)
  out = tmp_path / "rennes.tif"
  assert _predict(run, dates, out, "--window", str(block.tile_size)) == 0
  got, _, _, _ = _read(out)
  assert (got[100:120, 200:260] == 255).all() and (got != 255).sum() == got.size - 20 * 60


def test_command_line_errors_are_one_line(oscd_run, oscd_root, tmp_path, capsys):
  run, _ = oscd_run
  folder = oscd.images_dir(oscd_root) / "rennes"
  one = tmp_path / "imgs_1"
  shutil.copytree(folder / "imgs_1", one)
  next(one.glob("*_B12.tif")).unlink()
  assert _predict(run, [one, folder / "imgs_2"], tmp_path / "a.tif") == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "lacks band(s) ['B12']" in err[0] and str(one) in err[0]
  assert _predict(run, [folder / "imgs_1"], tmp_path / "b.tif") == 1
  assert "change detector: give two scenes" in capsys.readouterr().err
  other = oscd.images_dir(oscd_root) / "paris" / "imgs_2"
  assert _predict(run, [folder / "imgs_1", other], tmp_path / "c.tif", "--align", "exact") == 1
  assert "differs from the first scene" in capsys.readouterr().err
  assert not list(tmp_path.glob("*.tif"))


def test_two_processes_write_the_map_of_one(oscd_run, oscd_root, tmp_path):
  """`predict --distributed` in two local processes: each predicts its share of the rows,
  process 0 writes the one output; equal to the one-process map."""
  run, block = oscd_run
  folder = oscd.images_dir(oscd_root) / "rennes"
  inputs = [str(folder / "imgs_1"), str(folder / "imgs_2")]
  tiles = ["--window", str(block.tile_size), "--no_progress"]
  assert _predict(run, inputs, tmp_path / "one.tif", *tiles) == 0
  port = portpicker.pick_unused_port()
  repo = str(pathlib.Path(__file__).resolve().parents[2])
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get(
      "PYTHONPATH")])))
  procs = [subprocess.Popen(
      [sys.executable, "-m", "spectralgpt_jax", "predict", "--weights", str(run / "run"),
       "--input", *inputs, "--out", str(tmp_path / "two.tif"), *tiles, "--distributed",
       f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
  outs = [p.communicate(timeout=900) for p in procs]
  assert all(p.returncode == 0 for p in procs), "\n".join(e[-3000:] for _, e in outs)
  np.testing.assert_array_equal(_read(tmp_path / "two.tif")[0], _read(tmp_path / "one.tif")[0])


def test_an_exported_change_detector_predicts_the_map_of_its_run(oscd_run, oscd_root, tmp_path):
  """`predict --weights FILE` with the run's dense export (official head keys, manifest with the
  tile protocol) writes the class map the run directory writes."""
  from spectralgpt_jax.cli import export as export_cli
  run, block = oscd_run
  weights = tmp_path / "oscd.safetensors"
  assert export_cli.main(["--weights", str(run / "run"), "--out", str(weights)]) == 0
  folder = oscd.images_dir(oscd_root) / "rennes"
  tiles = ["--window", str(block.tile_size), "--stride", str(block.tile_stride)]
  from_run, from_file = tmp_path / "run.tif", tmp_path / "file.tif"
  assert _predict(run, [folder / "imgs_1", folder / "imgs_2"], from_run, *tiles) == 0
  assert predict_cli.main(["--weights", str(weights), "--input", str(folder / "imgs_1"),
                           str(folder / "imgs_2"), "--out", str(from_file), "--no_progress",
                           *tiles]) == 0
  np.testing.assert_array_equal(_read(from_file)[0], _read(from_run)[0])
