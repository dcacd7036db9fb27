"""Host batches -> global jax.Arrays on the mesh's data axes (8 simulated CPU devices)."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
from jax.sharding import Mesh  # noqa: E402

from data_pipelines import global_batch, pipeline  # noqa: E402


def _mesh(shape, names):
  if jax.device_count() < int(np.prod(shape)):
    pytest.skip("needs 8 devices (tests/conftest.py sets XLA_FLAGS)")
  return Mesh(np.array(jax.devices()[:int(np.prod(shape))]).reshape(shape), names)


def test_global_batch_from_pipeline(synth_dir):
  mesh = _mesh((4, 2), ("data", "model"))
  sh = global_batch.data_sharding(mesh, "data")
  cfg = pipeline.default_data_config()
  cfg.paths, cfg.batch_size, cfg.image_size = synth_dir, 8, 16
  cfg.label_type, cfg.num_classes, cfg.with_keys = "multi", 19, True
  it = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  host = next(it)
  batch = global_batch.make_global_batch(host, sh)
  assert set(batch) == {"cube", "label"}          # string keys are dropped
  assert batch["cube"].shape == (8, 12, 16, 16) and batch["label"].shape == (8, 19)
  assert batch["cube"].sharding.spec == jax.sharding.PartitionSpec("data", None, None, None)
  assert len(batch["cube"].addressable_shards) == 8
  assert batch["cube"].addressable_shards[0].data.shape == (2, 12, 16, 16)
  np.testing.assert_array_equal(np.asarray(batch["cube"]), host["cube"])
  total = jax.jit(lambda x: x.sum())(batch["label"])
  assert float(total) == pytest.approx(host["label"].sum())
  it.close()


def test_multi_axis_data_sharding_and_errors():
  mesh = _mesh((2, 2, 2), ("dcn", "data", "model"))
  sh = global_batch.data_sharding(mesh, ("dcn", "data"))
  out = global_batch.make_global_batch({"x": np.arange(8.0).reshape(8, 1)}, sh)
  assert out["x"].addressable_shards[0].data.shape == (2, 1)
  with pytest.raises(ValueError, match="not in mesh axes"):
    global_batch.data_sharding(mesh, "batch")
  with pytest.raises(ValueError, match="'x'.*divisible"):
    global_batch.make_global_batch({"x": np.zeros((6, 1))}, sh)
