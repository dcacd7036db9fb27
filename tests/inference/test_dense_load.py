"""`inference.load` of every model kind's dense pieces: a dense run directory and its dense
export load with the same params and the manifest's task, classes and tile protocol;
`dense_logits` / `class_logits` refuse what does not fit with one line; their outputs match
an independent implementation (the PyTorch models; slow tier)."""

import jax
import numpy as np
import pytest
from flax import traverse_util

import dense_helpers as D
from data_pipelines import dense
import export_helpers as H
from spectralgpt_jax.export import to_torch
from spectralgpt_jax.inference import load

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def cd(tmp_path_factory):
  """(loaded run, loaded export file) of a tiny change detector."""
  root = tmp_path_factory.mktemp("cd")
  run, _, _ = D.write_dense_run(root, D.TINY_CD, tiles=(32, 16))
  weights = to_torch.export_checkpoint(run, root / "cd.safetensors",
                                       classes=dense.class_names).weights
  return load(run), load(weights)


def test_run_and_export_load_alike(cd):
  from_run, from_file = cd
  assert from_run.kind == from_file.kind == "change"
  assert from_run.bands == from_file.bands == tuple(H.BANDS)
  assert from_run.normalization == from_file.normalization
  for m in cd:
    assert m.meta["task"] == "change_detection" and m.meta["classes"] == ["no change", "change"]
    assert m.meta["tile"] == {"size": 32, "stride": 16, "num_dates": 2, "minmax_scope": "image"}
    assert m.meta["output"] == "log_probabilities"
  a = traverse_util.flatten_dict(jax.tree.map(np.asarray, from_run.params))
  b = traverse_util.flatten_dict(jax.tree.map(np.asarray, from_file.params))
  assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
  assert from_run.model == from_file.model          # same module, same params: same outputs


def test_bad_calls_are_one_line(cd, tmp_path):
  m = cd[1]
  x = np.zeros((1, 12, 32, 32), np.float32)
  for call, needle in [(lambda: m.dense_logits(x), "two dates"),
                       (lambda: m.dense_logits(x[:, :10], x[:, :10]), "[B, 12, H, W]"),
                       (lambda: m.dense_logits(x, x[..., :24]), "differ in shape"),
                       (lambda: m.class_logits(x), "change model")]:
    with pytest.raises(ValueError) as e:
      call()
    assert needle in str(e.value) and "\n" not in str(e.value)
  run, _, _ = D.write_dense_run(tmp_path, D.TINY_SEG)
  with pytest.raises(ValueError, match="one image"):
    load(run).dense_logits(x, x)


@pytest.mark.slow
def test_dense_outputs_equal_from_run_and_file_and_as_dense_eval(cd):
  from spectralgpt_jax.train.tasks.dense import make_predict_fn
  rng = np.random.default_rng(0)
  x1, x2 = (rng.random((3, 12, 32, 32), dtype=np.float32) for _ in range(2))
  a, b = cd[0].dense_logits(x1, x2), cd[1].dense_logits(x1, x2)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(cd[1].dense_logits(x1, x2, batch_size=2), a, atol=1e-5)
  probs = np.asarray(jax.jit(make_predict_fn(cd[0].model))(cd[0].params, x1, x2))
  np.testing.assert_allclose(cd[0].dense_probabilities(x1, x2), probs, atol=1e-6)
  bf16 = cd[0].dense_probabilities(x1, x2, compute_dtype="bfloat16")
  assert 0 < np.abs(bf16 - probs).max() < 0.05     # bf16 matmuls: close, not identical


@pytest.mark.slow
def test_class_logits_match_pytorch(cubes32, tmp_path):
  import torch
  from spectralgpt_jax.torch import from_pretrained
  _, x = cubes32
  vit = H.build(H.TINY_VIT, num_classes=5)
  H.write_training_checkpoint(tmp_path / "run", H.random_params(vit, seed=2),
                              model={"name": H.TINY_VIT, "num_classes": 5})
  ours = load(tmp_path / "run").class_logits(x, batch_size=4)
  path = to_torch.export_checkpoint(tmp_path / "run", tmp_path / "v.safetensors",
                                    target="finetune").weights
  with torch.no_grad():
    theirs = from_pretrained(path)(torch.from_numpy(x)).numpy()
  assert ours.shape == (x.shape[0], 5)
  np.testing.assert_allclose(theirs, ours, atol=1e-5)
