"""Linear and kNN evaluators end to end on the six real patches (multi-label, 19 classes)."""

import json

import numpy as np
import pytest

from spectralgpt_jax import evaluation
from spectralgpt_jax.evaluation import features
from spectralgpt_jax.evaluation.context import EvalContext

from eval_recompute import check_predictions_file


@pytest.fixture(scope="module")
def two_runs(make_eval_config, tmp_path_factory):
  """run1 extracts; run2 (a sibling workdir: same cache) must not. -> (root, out1, out2)."""
  root = tmp_path_factory.mktemp("runs")
  config = make_eval_config()
  out1 = evaluation.run_evals(config, str(root / "run1"))

  def no_extraction(*a, **k):
    raise AssertionError("features were extracted again")
  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(features, "extract_features", no_extraction)
    out2 = evaluation.run_evals(config, str(root / "run2"))
  return root, out1, out2


def test_linear_and_knn_cached_across_runs(two_runs):
  root, out1, out2 = two_runs
  for name in ("lin", "nn"):
    assert out1[f"{name}/num_examples"] == 3
  assert {"lin/l2=0.001/macro_map", "lin/l2=10/macro_map", "lin/best_l2"} <= set(out1)
  assert out1["lin/selected_on_val"] == 0.0
  cached = sorted((root / "feature_cache").glob("*.npz"))
  assert len(cached) == 4   # (train, test) x (final output, layers 0 and -1)
  with np.load(cached[0]) as z:
    assert z["features"].shape[0] == 3 and z["labels"].shape == (3, 19)
  assert out2 == pytest.approx(out1, nan_ok=True)
  info = json.loads((root / "run2" / "nn" / "metrics.json").read_text())["info"]
  assert info["extracted"] == 0 and info["feature_dim"] == 2 * 64  # two layers, tiny D = 64


def test_predictions_recompute_metrics(two_runs):
  """predictions.npz of each probe reproduces every reported metric (evaluation.metrics and
  scikit-learn on the saved float32 scores)."""
  root, out, _ = two_runs
  assert json.loads((root / "run1" / "metrics.json").read_text()) == pytest.approx(
      out, nan_ok=True)
  for name in ("lin", "nn"):
    path = root / "run1" / name / "predictions.npz"
    with np.load(path) as z:
      assert z["ids"].shape == (3,) and z["scores"].shape == (3, 19)
      assert str(z["label_type"]) == "multi" and int(z["official_batch_size"]) == 2
    check_predictions_file(path, {k.split("/", 1)[1]: v for k, v in out.items()
                                  if k.startswith(f"{name}/")})


def test_unknown_type_lists_known(make_eval_config, tmp_path):
  config = make_eval_config()
  config.evals = {"bad": {"type": "linear_probe"}}
  with pytest.raises(ValueError, match=r"unknown evaluator type 'linear_probe'.*'knn'.*'linear'"):
    evaluation.run_evals(config, str(tmp_path / "run"))


def test_intermediate_layers_without_model_change(tmp_path):
  """ViT: the last block's output (layers=(-1,)) is the model's `features` output."""
  ctx = EvalContext(str(tmp_path), 0, "", "vit_tiny_patch8_32", "")
  enc = features.load_encoder(ctx)
  x = np.random.default_rng(0).uniform(size=(2, 12, 32, 32)).astype(np.float32)
  final = features.feature_fn(enc, None, "mean")(enc.params, x)
  last = features.feature_fn(enc, (-1,), "mean")(enc.params, x)
  np.testing.assert_allclose(last, final, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(final, enc.features(x, normalize=False).mean(1), rtol=1e-5, atol=1e-6)
  two = features.feature_fn(enc, (0, 1), "skip_first")(enc.params, x)
  assert two.shape == (2, 128)
  with pytest.raises(ValueError, match="out of range"):
    features.feature_fn(enc, (5,), "mean")


def test_cache_key_follows_the_split_file_contents(tmp_path):
  """A split list edited in place (same path) selects other examples: a new cache entry."""
  from data_pipelines.config import default_data_config
  from spectralgpt_jax.evaluation import features
  split = tmp_path / "train.txt"
  split.write_text("a\nb\n")
  cfg = default_data_config()
  cfg.source, cfg.paths, cfg.split_file = "tfds", "", str(split)
  before = features.data_identity(cfg)
  split.write_text("a\nc\n")
  assert features.data_identity(cfg) != before
