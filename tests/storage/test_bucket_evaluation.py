"""Evaluation with shards, outputs and the feature cache in an emulated GCS bucket: the same
metrics as the run on local disk, metrics.json and predictions.npz in the bucket, a second
point that reads its features from the bucket's cache, and a sweep's points with their
results tables and plots written there."""

import json
import math

import pytest

from data_pipelines import absl_flags, storage
from spectralgpt_jax import evaluation


def _config(train, test):
  import ml_collections
  from eval_data import data_config  # tests/evaluation, on sys.path by name (see below)
  c = ml_collections.ConfigDict()
  c.seed, c.pretrained, c.model, c.cache_dir = 0, "", "mae_vit_tiny_patch8_32", ""
  c.evals = ml_collections.ConfigDict()
  c.evals.lin = dict(type="linear", train_data=data_config(train), test_data=data_config(test),
                     l2_strengths=(1e-3, 1e-1), official_batch_size=2)
  c.evals.nn = dict(type="knn", train_data=data_config(train), test_data=data_config(test),
                    k=2, temperature=0.1, layers=(0, -1), pooling="skip_first")
  return c


def _same(a, b):
  assert a.keys() == b.keys()
  for k in a:
    assert (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == pytest.approx(b[k], rel=1e-6), k


@pytest.mark.slow
def test_evaluate_into_a_bucket_matches_local(gcs_server, ben_dir, tmp_path, monkeypatch):
  import os
  monkeypatch.syspath_prepend(os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "evaluation"))
  absl_flags.ensure_parsed()
  local_shards = storage.glob(f"{ben_dir}/*.tfrecord")
  local = evaluation.run_evals(_config(*local_shards), str(tmp_path / "sweep" / "point"))
  with gcs_server.environ():
    bucket = gcs_server.make_bucket("test-eval")
    storage.upload_tree(ben_dir, storage.join(bucket, "ben"), last=("manifest.json",))
    shards = storage.glob(storage.join(bucket, "ben", "*.tfrecord"))
    point = storage.join(bucket, "sweep", "point")
    remote = evaluation.run_evals(_config(*shards), point)
    _same(local, remote)
    assert json.loads(storage.read_text(storage.join(point, "metrics.json")))
    for name in ("lin", "nn"):
      assert storage.exists(storage.join(point, name, "predictions.npz"))
    cache = storage.join(bucket, "sweep", "feature_cache")
    cached = storage.listdir(cache)
    assert cached and all(n.endswith((".npz", ".json")) for n in cached)
    again = evaluation.run_evals(_config(*shards), storage.join(bucket, "sweep", "point2"))
    _same(remote, again)
    assert storage.listdir(cache) == cached   # read from the bucket's cache, none added

    from spectralgpt_jax.cli import evaluate as evaluate_cli, sweep as sweep_cli
    root = storage.join(bucket, "seeds")
    for seed in (0, 1):
      config = _config(*shards)
      config.seed = seed
      assert evaluate_cli.run_point(config, {"seed": seed}, storage.join(root, f"s{seed}"))
      assert evaluate_cli.run_point(config, {"seed": seed},
                                    storage.join(root, f"s{seed}")) is None  # done: skipped
    tables, pngs = sweep_cli.report(root, quiet=True)
    assert tables and pngs and all(p.startswith("gs://") for p in tables + pngs)
    assert storage.read_text(storage.join(root, "results.csv")).count("\n") >= 3
    assert all(storage.read_bytes(p)[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
