"""Local GeoTIFFs open without AWS work when AWS credentials are in the environment."""

import numpy as np
import rasterio
from rasterio.env import getenv

from data_pipelines import bigearthnet, local_raster


def test_local_open_ignores_aws_credentials(example_dir, monkeypatch):
  monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
  monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
  monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
  tif = sorted(example_dir.rglob("*_B04.tif"))[0]
  with rasterio.Env():   # rasterio's default: a boto3 session hands the keys to GDAL
    assert getenv().get("AWS_ACCESS_KEY_ID") == "AKIDEXAMPLE"
  with local_raster.open_local(tif) as src:
    assert "AWS_ACCESS_KEY_ID" not in getenv()   # no session was made
    data = src.read(1)
  with rasterio.open(tif) as src:
    np.testing.assert_array_equal(data, src.read(1))
  cube, _ = bigearthnet.read_bigearthnet_patch(tif.parent)
  assert cube.shape[0] == 12
