"""Real object stores on loopback for the storage tests: a GCS emulator and a moto S3 server
(data_pipelines.local_object_store), each started once per session, with a fresh bucket per
test and the client variables put into os.environ only for that test."""

import itertools

import pytest

from data_pipelines import local_object_store

_BUCKETS = itertools.count()


@pytest.fixture(scope="session")
def gcs_server():
  pytest.importorskip("gcsfs")
  pytest.importorskip("gcp_storage_emulator")
  with local_object_store.gcs_emulator() as store:
    yield store


@pytest.fixture(scope="session")
def s3_server():
  pytest.importorskip("s3fs")
  pytest.importorskip("moto")
  with local_object_store.s3_server() as store:
    yield store


@pytest.fixture(params=["gcs", "s3"])
def store(request, monkeypatch):
  """A running store (each kind in turn) whose variables are in os.environ for the test."""
  server = request.getfixturevalue(f"{request.param}_server")
  for name, value in server.env().items():
    monkeypatch.setenv(name, value)
  return server


@pytest.fixture
def bucket(store):
  """URL of a new empty bucket in `store` (gs://test-N or s3://test-N)."""
  return store.make_bucket(f"test-{next(_BUCKETS)}")
