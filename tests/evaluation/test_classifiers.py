"""Ridge path and kNN votes on synthetic features; the single-label evaluator path with
validation selection (features injected, no encoder)."""

import json

import ml_collections
import numpy as np
import pytest

from spectralgpt_jax.evaluation import features, knn, linear, registry
from spectralgpt_jax.evaluation.context import EvalContext

from eval_recompute import check_predictions_file

sk_linear = pytest.importorskip("sklearn.linear_model")
sk_metrics = pytest.importorskip("sklearn.metrics")


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
  out = registry.build("lin", cfg, ctx).run()
  assert out["selected_on_val"] == 1.0 and out["best_l2"] in (1e-4, 1.0)
  assert out["accuracy"] > 0.6 and "l2=10000/val_accuracy" in out
  assert (tmp_path / "confusion.png").read_bytes().startswith(b"\x89PNG")
  saved = json.loads((tmp_path / "metrics.json").read_text())
  assert np.asarray(saved["confusion_matrix"]).sum() == 30
  check_predictions_file(tmp_path / "predictions.npz", out, saved["confusion_matrix"])


def test_scores_tied_in_float32_are_scored_as_saved(tmp_path, monkeypatch):
  """Float64 scores closer than float32 resolves (near-ties) are scored after the cast to
  float32 that predictions.npz holds: the file reproduces the reported AP."""
  labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
  # Per class, a negative above a positive by 1e-12: distinct in float64, tied in float32
  # (sklearn groups ties), so AP differs between the two.
  s64 = np.array([[0.3, 0.6], [0.3 + 1e-12, 0.6 + 1e-12], [0.2, 0.1], [0.1, 0.2]])
  fs = features.FeatureSet(np.zeros((4, 2), np.float32), labels,
                           np.array([f"id{i}" for i in range(4)]))
  assert sk_metrics.average_precision_score(labels.ravel(), s64.ravel()) != pytest.approx(
      sk_metrics.average_precision_score(labels.ravel(), s64.astype(np.float32).ravel()))
  data = ml_collections.ConfigDict(dict(paths="te", label_type="multi", num_classes=2,
                                        batch_size=4, source="tfrecord"))
  ev = knn.KnnEvaluator(ctx=EvalContext(str(tmp_path), 0, "", "", ""), train_data=data,
                        test_data=data)
  reported, cm = ev.score(fs, s64)
  ev.finish(fs, s64, reported, {}, cm)
  check_predictions_file(tmp_path / "predictions.npz", reported)
