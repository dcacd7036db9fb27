"""Fixtures of the evaluation tests: the six real BigEarthNet patches as shards, and
data/eval configs over them (train = first shard, 3 patches; test = second, 3 patches)."""

import pathlib

import ml_collections
import pytest

from data_pipelines import absl_flags
from eval_data import data_config


@pytest.fixture(scope="session", autouse=True)
def _absl_flags_parsed():
  absl_flags.ensure_parsed()


@pytest.fixture(scope="session")
def ben_shards(ben_dir):
  """The six patches (BigEarthNet-19 labels, tests/conftest.py) as 2 shards of 3: [train, test]."""
  return sorted(str(p) for p in pathlib.Path(ben_dir).glob("*.tfrecord"))


@pytest.fixture(scope="session")
def make_eval_config(ben_shards):
  """() -> a fresh top-level eval config (random tiny MAE) with a linear and a kNN evaluator."""
  def make() -> ml_collections.ConfigDict:
    train, test = ben_shards
    c = ml_collections.ConfigDict()
    c.seed, c.pretrained, c.model, c.cache_dir = 0, "", "mae_vit_tiny_patch8_32", ""
    c.evals = ml_collections.ConfigDict()
    c.evals.lin = dict(type="linear", train_data=data_config(train), test_data=data_config(test),
                       l2_strengths=(1e-3, 1e-1, 10.0), official_batch_size=2)
    c.evals.nn = dict(type="knn", train_data=data_config(train), test_data=data_config(test),
                      k=2, temperature=0.1, layers=(0, -1), pooling="skip_first")
    return c
  return make
