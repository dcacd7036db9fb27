"""GeoTIFF time series: per-date files -> [T, C, H, W] records -> inspect -> [B, T, C, S, S]."""

import json
import pathlib

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import Affine  # noqa: E402

from data_pipelines import config, example_codec, ingest, pipeline, schema, tfrecord  # noqa: E402
from data_pipelines.errors import BadInputError  # noqa: E402
from spectralgpt_jax.cli import ingest as ingest_cli  # noqa: E402
from spectralgpt_jax.cli import inspect as inspect_cli  # noqa: E402

BANDS = schema.L2A_BANDS   # 12 planes, named through --bands l2a
DATES = ("2021-06-01", "2021-07-15")


def _write(path, arr, datetime_tag=None):
  with rasterio.open(path, "w", driver="GTiff", height=arr.shape[1], width=arr.shape[2],
                     count=arr.shape[0], dtype=arr.dtype, crs="EPSG:32633",
                     transform=Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 5300000.0)) as dst:
    dst.write(arr)
    if datetime_tag:
      dst.update_tags(TIFFTAG_DATETIME=datetime_tag)


def _cube(example, t, size=20):
  """Band b of date t holds ~ 1000 (b + 1) + 500 t (+ example, + noise)."""
  rng = np.random.default_rng([example, t])
  base = 1000 * (np.arange(len(BANDS))[:, None, None] + 1) + 500 * t + example
  return (base + rng.integers(0, 50, (len(BANDS), size, size))).astype(np.uint16)


def _write_series(root: pathlib.Path, n: int = 3) -> pathlib.Path:
  for i in range(n):
    folder = root / f"field_{i}"
    folder.mkdir(parents=True)
    # The later date sorts first by file name: order must come from the dates. The first file
    # dates itself through its TIFFTAG_DATETIME, the second through its name.
    _write(folder / "a_late.tif", _cube(i, 1), datetime_tag="2021:07:15 10:30:00")
    _write(folder / f"S2_{DATES[0].replace('-', '')}.tif", _cube(i, 0))
  return root


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory):
  return _write_series(tmp_path_factory.mktemp("series") / "in")


def test_series_ingest_inspect_and_pipeline(series_dir, tmp_path, capsys):
  out = tmp_path / "shards"
  assert ingest_cli.main(["--source", "geotiff_series", "--input", str(series_dir), "--bands",
                          "l2a", "--dates", "2", "--out", str(out), "--shards", "2"]) == 0
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["num_records"] == 3 and manifest["cube_shapes"] == [[2, 12, 20, 20]]
  for shard in manifest["shards"]:
    for _, data in tfrecord.iter_records(out / shard["file"]):
      rec = example_codec.decode_record(data)
      i = int(pathlib.Path(rec["key"]).name.split("_")[1])
      assert rec["dates"] == list(DATES) and rec["date"] == DATES[0]
      np.testing.assert_array_equal(rec["cube"], np.stack([_cube(i, 0), _cube(i, 1)]))
  capsys.readouterr()
  assert inspect_cli.main([str(out)]) == 0
  assert f"dates per example: 2, {DATES[0]} .. {DATES[1]}" in capsys.readouterr().out

  c = config.default_data_config()
  c.paths, c.batch_size, c.image_size, c.num_dates = str(out), 2, 16, 2
  c.normalization, c.train = "none", False
  b = next(pipeline.make_pipeline(c, process_index=0, process_count=1))
  assert b["cube"].shape == (2, 2, 12, 16, 16) and b["cube"].dtype == np.float32
  band_means = b["cube"].mean(axis=(0, 3, 4))               # [T, C]
  np.testing.assert_array_less(np.abs(band_means[1] - band_means[0] - 500), 5)
  c.normalization, c.train = "minmax", True
  b = next(pipeline.make_pipeline(c, process_index=0, process_count=1))
  assert b["cube"].shape == (2, 2, 12, 16, 16)
  assert b["cube"][:, :, :, 4:-4, 4:-4].min() > -0.5 and b["cube"].max() < 1.5


def test_series_bad_inputs(tmp_path):
  root = _write_series(tmp_path / "in", n=1)
  folder = root / "field_0"
  with pytest.raises(BadInputError, match="3 dates"):
    ingest.geotiff_series_items([str(root)], bands="l2a", num_dates=3)[0].load()
  _write(folder / "extra.tif", _cube(0, 2))                 # no date anywhere
  with pytest.raises(BadInputError, match="extra.tif.*date"):
    ingest.geotiff_series_items([str(root)], bands="l2a")[0].load()
  (folder / "extra.tif").unlink()
  _write(folder / "2021-08-01.tif", _cube(0, 2, size=24))  # another grid
  with pytest.raises(BadInputError, match="2021-08-01.tif.*shape"):
    ingest.geotiff_series_items([str(root)], bands="l2a")[0].load()
  with pytest.raises(BadInputError, match="not a folder"):
    ingest.geotiff_series_items([str(folder / "a_late.tif")])
