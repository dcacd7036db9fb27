"""Ridge path and kNN votes on synthetic features; the single-label evaluator path with
validation selection (features injected, no encoder)."""

import json

import ml_collections
import numpy as np
import pytest

from spectralgpt_jax.evaluation import features, knn, linear
from spectralgpt_jax.evaluation.context import EvalContext

sk_linear = pytest.importorskip("sklearn.linear_model")


@pytest.mark.parametrize("n,f", [(40, 6), (5, 12)])   # primal and dual forms
def test_ridge_path_matches_sklearn(n, f):
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(n, f)) * 3 + 1, rng.normal(size=(n, 3))
  for l, (w, b) in zip((1e-3, 0.5), linear.ridge_path(x, y, (1e-3, 0.5))):
    mu, sd = linear.standardize_stats(x)
    ref = sk_linear.Ridge(alpha=n * l).fit((x - mu) / sd, y)
    np.testing.assert_allclose(x @ w + b, ref.predict((x - mu) / sd), rtol=1e-6, atol=1e-8)


def test_knn_votes_by_hand():
  train = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0]])
  y = np.eye(2)[[0, 1, 1]]
  s = knn.knn_scores(train, y, np.array([[1.0, 0.05]]), k=2, temperature=0.5)
  sims = train[:2] @ np.array([1.0, 0.05]) / np.linalg.norm(train[:2], axis=1) / np.hypot(1, .05)
  w = np.exp(sims / 0.5)
  np.testing.assert_allclose(s[0], w / w.sum(), rtol=1e-6)


def test_single_label_linear_selects_on_val(tmp_path, monkeypatch):
  rng = np.random.default_rng(1)
  def split(n):
    y = rng.integers(0, 3, n)
    return features.FeatureSet(rng.normal(size=(n, 8)) + 2 * np.eye(3, 8)[y], y.astype(np.int32),
                               np.array([f"id{i}" for i in range(n)]))
  sets = {"tr": split(60), "va": split(30), "te": split(30)}
  monkeypatch.setattr(features.FeatureCache, "get",
                      lambda self, data, **k: sets[data.paths])
  data = lambda p: ml_collections.ConfigDict(dict(paths=p, label_type="single", num_classes=3,
                                                  batch_size=8, source="tfrecord"))
  cfg = ml_collections.ConfigDict(dict(type="linear", train_data=data("tr"),
                                       val_data=data("va"), test_data=data("te"),
                                       l2_strengths=(1e-4, 1.0, 1e4)))
  ctx = EvalContext(str(tmp_path), 0, "", "", "")
  out = linear.LinearEvaluator(cfg, ctx).run()
  assert out["selected_on_val"] == 1.0 and out["best_l2"] in (1e-4, 1.0)
  assert out["accuracy"] > 0.6 and "l2=10000/val_accuracy" in out
  assert (tmp_path / "confusion.png").read_bytes().startswith(b"\x89PNG")
  saved = json.loads((tmp_path / "metrics.json").read_text())
  assert np.asarray(saved["confusion_matrix"]).sum() == 30
