"""Fixtures for the data pipeline tests: small synthetic shard sets and the real patches."""

import os

import pytest

import dp_synth
from data_pipelines import absl_flags


@pytest.fixture(scope="session", autouse=True)
def _absl_flags_parsed():
  absl_flags.ensure_parsed()  # grain's workers read absl flags; pytest never parses them


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
  """40 records (12 x 24 x 24 uint16, labels, mask) in 4 shards, with manifest."""
  out = tmp_path_factory.mktemp("synth")
  dp_synth.write_dataset(out, n=40, shards=4)
  return str(out)


@pytest.fixture(scope="session")
def ben_dir(tmp_path_factory, example_dir):
  """The six real BigEarthNet patches ingested into 2 shards (SHA256SUMS verified first)."""
  pytest.importorskip("rasterio")
  from data_pipelines import ingest
  out = tmp_path_factory.mktemp("ben")
  ingest.ingest("bigearthnet", [str(example_dir)], out, num_shards=2, verify_sha256=True)
  return str(out)
