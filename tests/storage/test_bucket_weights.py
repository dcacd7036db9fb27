"""Weights files in buckets: an export uploaded with its manifest loads (from_torch.load_weights,
inference.load) to the same params as the local file; `import` reads it from a bucket and writes
its orbax checkpoint into a gs:// workdir; a missing object is one line naming the URL."""

import jax
import numpy as np
import pytest

import export_helpers as H
from data_pipelines import storage
from spectralgpt_jax import checkpoints
from spectralgpt_jax.export import from_torch, to_torch
from spectralgpt_jax.inference import load


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
  """A tiny MAE exported as .safetensors with its `.json` manifest beside it."""
  tmp = tmp_path_factory.mktemp("weights")
  params = jax.tree.map(np.asarray, H.random_params(H.build(H.TINY_MAE), seed=3))
  H.write_training_checkpoint(tmp / "run", params, model={"name": H.TINY_MAE})
  return to_torch.export_checkpoint(tmp / "run", tmp / "w.safetensors").weights


def _upload(weights, url):
  storage.write_bytes(url, weights.read_bytes())
  storage.write_bytes(url + ".json", weights.with_name(weights.name + ".json").read_bytes())


def _assert_same_tree(a, b):
  flat_a, flat_b = jax.tree.leaves_with_path(a), jax.tree.leaves_with_path(b)
  assert [p for p, _ in flat_a] == [p for p, _ in flat_b]
  for (_, x), (_, y) in zip(flat_a, flat_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_load_weights_and_inference_load_from_bucket(weights_file, bucket):
  url = storage.join(bucket, "release", "w.safetensors")
  _upload(weights_file, url)
  local_conv, local_meta = from_torch.load_weights(weights_file)
  conv, meta = from_torch.load_weights(url)
  _assert_same_tree(conv.params, local_conv.params)
  assert meta["model"] == local_meta["model"] and meta["bands"] == local_meta["bands"]
  assert meta["config"]["imported_from"] == url
  model = load(url)
  assert model.source == url and model.bands == load(weights_file).bands
  _assert_same_tree(model.params, load(weights_file).params)
  missing = storage.join(bucket, "release", "nothing.safetensors")
  with pytest.raises(FileNotFoundError, match=rf"^{missing}: no such"):
    load(missing)
  with pytest.raises(FileNotFoundError, match=rf"^{missing}: no such object"):
    from_torch.load_weights(missing)


def test_import_from_bucket_into_gcs_workdir(weights_file, gcs_server):
  with gcs_server.environ():
    bucket = gcs_server.make_bucket("test-import")
    url = storage.join(bucket, "w.safetensors")
    _upload(weights_file, url)
    workdir = storage.join(bucket, "runs", "imported")
    step_dir, conv, _ = from_torch.import_file(url, workdir)
    assert str(step_dir) == storage.join(workdir, "checkpoints", "0")
    ckpt = checkpoints.read_checkpoint(workdir)
    _assert_same_tree(ckpt.params, conv.params)
    assert ckpt.meta["config"]["imported_from"] == url


def test_import_into_s3_workdir_is_refused_in_one_line(weights_file):
  with pytest.raises(ValueError, match=r"^s3://b/run: orbax writes checkpoints to local "
                     r"paths and gs:// only"):
    from_torch.import_file(weights_file, "s3://b/run")
