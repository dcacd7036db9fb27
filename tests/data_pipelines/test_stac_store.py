"""`ingest --source stac` with the catalog and its COGs in a bucket: a moto S3 server and a
GCS emulator on 127.0.0.1, reached through the normal client settings (AWS_ENDPOINT_URL and
keys; STORAGE_EMULATOR_HOST)."""

import contextlib
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

BIN = os.path.dirname(sys.executable)


@contextlib.contextmanager
def _server(argv, env):
  """Runs `argv` (a loopback server on env["_PORT"]) with `env` set in os.environ."""
  port = int(env.pop("_PORT"))
  exe = os.path.join(BIN, argv[0])
  if not os.path.exists(exe):
    pytest.skip(f"{argv[0]} is not installed (pip install -e .[cloud])")
  proc = subprocess.Popen([exe, *argv[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  try:
    deadline = time.monotonic() + 30
    while True:
      try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        break
      except OSError:
        if time.monotonic() > deadline or proc.poll() is not None:
          raise
        time.sleep(0.1)
    yield
  finally:
    proc.terminate()
    proc.wait()
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _s3():
  import s3fs  # pylint: disable=g-import-not-at-top
  port = _free_port()
  env = {"_PORT": port, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
         "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
         "AWS_DEFAULT_REGION": "us-east-1"}
  return (["moto_server", "-H", "127.0.0.1", "-p", str(port)], env,
          lambda: s3fs.S3FileSystem(), "s3")


def _gcs():
  # gcsfs's default class first asks the bucket type over gRPC, which an emulator does not
  # answer (a 60 s timeout); its plain HTTP class is chosen by this variable at import.
  if "gcsfs" in sys.modules and os.environ.get("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT") != "false":
    pytest.skip("gcsfs was imported without GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false")
  os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
  import gcsfs  # pylint: disable=g-import-not-at-top
  port = _free_port()
  env = {"_PORT": port, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
  return (["gcp-storage-emulator", "start", "--host=127.0.0.1", f"--port={port}",
           "--in-memory"], env, lambda: gcsfs.GCSFileSystem(project="test"), "gs")


@pytest.mark.parametrize("store", [_s3, pytest.param(_gcs, marks=pytest.mark.slow)],
                         ids=["s3", "gcs"])
def test_catalog_and_cogs_in_a_bucket(served, store, tmp_path):  # noqa: F811
  root, _, _ = served
  argv, env, make_fs, scheme = store()
  with _server(argv, env):
    fs = make_fs()
    fs.mkdir("stac")
    fs.put(str(root / "items"), "stac/items", recursive=True)
    fs.put(str(root / "catalog.json"), "stac/catalog.json")
    stac_assets.cached_raster.cache_clear()
    catalog = f"{scheme}://stac/catalog.json"
    manifest = ingest.ingest("stac", [catalog], tmp_path / "out", num_shards=1,
                             patch_size=TILE, bands="B02,B05,B09", store_dtype="float32")
    assert manifest["labels"]["stac"]["tiles"] == 8 and manifest["num_records"] == 6
    _, recs = _records(tmp_path / "out")
    for key, rec in recs.items():
      patch, row, col = key.split(":")
      assert rec["source"] == f"{scheme}://stac/items/{patch}/item.json"
      for i, band in enumerate(rec["bands"]):
        np.testing.assert_allclose(rec["cube"][i],
                                   _expected_tile(patch, band, int(row), int(col)),
                                   rtol=1e-5, atol=1e-2, err_msg=f"{key} {band}")
    fs.rm(f"stac/items/{PATCHES[0]}/B02.tif")
    stac_assets.cached_raster.cache_clear()
    missing = f"{scheme}://stac/items/{PATCHES[0]}/B02.tif"
    with pytest.raises(BadInputError, match=missing) as err:
      ingest.ingest("stac", [catalog], tmp_path / "gone", num_shards=1, patch_size=TILE)
    assert PATCHES[0] in str(err.value) and "\n" not in str(err.value)
    stac_assets.cached_raster.cache_clear()
