"""`ingest --source stac` with the catalog and its COGs in a bucket: a moto S3 server and a
GCS emulator on 127.0.0.1 (data_pipelines.local_object_store), reached through the normal
client settings (AWS_ENDPOINT_URL and keys; STORAGE_EMULATOR_HOST)."""

import numpy as np
import pytest

from data_pipelines import ingest, local_object_store, stac_assets, storage
from data_pipelines.errors import BadInputError

from test_stac import PATCHES, TILE, _expected_tile, _records, served  # noqa: F401  # fixture


@pytest.fixture(params=["s3", pytest.param("gcs", marks=pytest.mark.slow)])
def store(request, monkeypatch):
  """A running loopback store of each kind whose variables are in os.environ for the test."""
  pytest.importorskip("s3fs" if request.param == "s3" else "gcsfs")
  pytest.importorskip("moto" if request.param == "s3" else "gcp_storage_emulator")
  with (local_object_store.s3_server() if request.param == "s3"
        else local_object_store.gcs_emulator()) as server:
    for name, value in server.env().items():
      monkeypatch.setenv(name, value)
    yield server


def test_catalog_and_cogs_in_a_bucket(served, store, tmp_path):  # noqa: F811
  root, _, _ = served
  bucket = store.make_bucket("stac")
  storage.upload_tree(root / "items", storage.join(bucket, "items"))
  storage.write_bytes(storage.join(bucket, "catalog.json"), (root / "catalog.json").read_bytes())
  stac_assets.cached_raster.cache_clear()
  catalog = storage.join(bucket, "catalog.json")
  manifest = ingest.ingest("stac", [catalog], tmp_path / "out", num_shards=1,
                           patch_size=TILE, bands="B02,B05,B09", store_dtype="float32")
  assert manifest["labels"]["stac"]["tiles"] == 8 and manifest["num_records"] == 6
  _, recs = _records(tmp_path / "out")
  for key, rec in recs.items():
    patch, row, col = key.split(":")
    assert rec["source"] == storage.join(bucket, "items", patch, "item.json")
    for i, band in enumerate(rec["bands"]):
      np.testing.assert_allclose(rec["cube"][i],
                                 _expected_tile(patch, band, int(row), int(col)),
                                 rtol=1e-5, atol=1e-2, err_msg=f"{key} {band}")
  missing = storage.join(bucket, "items", PATCHES[0], "B02.tif")
  storage.remove(missing)
  stac_assets.cached_raster.cache_clear()
  try:
    with pytest.raises(BadInputError, match=missing) as err:
      ingest.ingest("stac", [catalog], tmp_path / "gone", num_shards=1, patch_size=TILE)
    assert PATCHES[0] in str(err.value) and "\n" not in str(err.value)
    assert "no such object" in str(err.value)   # storage's error, passed on
  finally:
    stac_assets.cached_raster.cache_clear()
