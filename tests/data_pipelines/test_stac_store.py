"""`ingest --source stac` with the catalog and its COGs in an S3 bucket: a moto S3 server on
127.0.0.1, reached through the normal client settings (AWS_ENDPOINT_URL and keys)."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from data_pipelines import ingest, stac_assets
from data_pipelines.errors import BadInputError

from test_stac import PATCHES, TILE, _expected_tile, _records, served  # noqa: F401  # fixture


@pytest.fixture(scope="module")
def s3_endpoint():
  """A moto S3 server on a free loopback port, with the client environment pointed at it."""
  pytest.importorskip("s3fs")
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  server = os.path.join(os.path.dirname(sys.executable), "moto_server")
  if not os.path.exists(server):
    pytest.skip("moto[server] is not installed (pip install -e .[cloud])")
  proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
         "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  try:
    deadline = time.monotonic() + 30
    while True:
      try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        break
      except OSError:
        if time.monotonic() > deadline:
          raise
        time.sleep(0.1)
    yield env["AWS_ENDPOINT_URL"]
  finally:
    proc.terminate()
    proc.wait()
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def test_catalog_and_cogs_in_a_bucket(served, s3_endpoint, tmp_path):  # noqa: F811
  import s3fs  # pylint: disable=g-import-not-at-top
  root, _, _ = served
  fs = s3fs.S3FileSystem()
  fs.mkdir("stac")
  fs.put(str(root / "items"), "stac/items", recursive=True)
  fs.put(str(root / "catalog.json"), "stac/catalog.json")
  stac_assets.cached_raster.cache_clear()
  manifest = ingest.ingest("stac", ["s3://stac/catalog.json"], tmp_path / "out", num_shards=1,
                           patch_size=TILE, bands="B02,B05,B09", store_dtype="float32")
  assert manifest["labels"]["stac"]["tiles"] == 8 and manifest["num_records"] == 6
  _, recs = _records(tmp_path / "out")
  for key, rec in recs.items():
    patch, row, col = key.split(":")
    assert rec["source"] == f"s3://stac/items/{patch}/item.json"
    for i, band in enumerate(rec["bands"]):
      np.testing.assert_allclose(rec["cube"][i], _expected_tile(patch, band, int(row), int(col)),
                                 rtol=1e-5, atol=1e-2, err_msg=f"{key} {band}")
  fs.rm(f"stac/items/{PATCHES[0]}/B02.tif")
  stac_assets.cached_raster.cache_clear()
  with pytest.raises(BadInputError, match=f"s3://stac/items/{PATCHES[0]}/B02.tif") as err:
    ingest.ingest("stac", ["s3://stac/catalog.json"], tmp_path / "gone", num_shards=1,
                  patch_size=TILE)
  assert PATCHES[0] in str(err.value) and "\n" not in str(err.value)
  json.dumps(manifest)   # the counts stay JSON
