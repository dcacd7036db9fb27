"""Metrics against scikit-learn on fixed predictions."""

import numpy as np
import pytest

from spectralgpt_jax.evaluation import metrics as M

sk = pytest.importorskip("sklearn.metrics")


def _single(seed=0, n=200, k=7):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, k - 1, n)          # class k-1 never occurs in labels
  scores = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
  return labels, scores


def _multi(seed=0, n=150, k=9):
  rng = np.random.default_rng(seed)
  y = (rng.uniform(size=(n, k)) < 0.3).astype(np.float32)
  y[:, 3] = 0                                  # a class without positives
  s = rng.uniform(size=(n, k)) * 0.7 + 0.4 * y
  s[:20, 0] = 0.5                              # ties
  return y, s


def test_single_label_matches_sklearn():
  labels, scores = _single()
  pred = scores.argmax(1)
  m, cm = M.single_label(labels, scores)
  assert m["accuracy"] == pytest.approx(sk.accuracy_score(labels, pred))
  assert m["macro_f1"] == pytest.approx(sk.f1_score(labels, pred, average="macro",
                                                    zero_division=0))
  np.testing.assert_array_equal(cm, sk.confusion_matrix(labels, pred, labels=range(7)))
  recall = sk.recall_score(labels, pred, average=None, labels=range(6), zero_division=0)
  np.testing.assert_allclose([m[f"per_class_accuracy/{c}"] for c in range(6)], recall)
  assert np.isnan(m["per_class_accuracy/6"])
  assert m["mean_per_class_accuracy"] == pytest.approx(sk.balanced_accuracy_score(labels, pred))
  png = M.confusion_png(cm)
  assert png.startswith(b"\x89PNG") and len(png) > 100


def test_multi_label_matches_sklearn():
  y, s = _multi()
  m = M.multi_label(y, s, batch_size=32)
  assert m["micro_map"] == pytest.approx(sk.average_precision_score(y.ravel(), s.ravel()))
  keep = y.sum(0) > 0
  assert m["map_classes_skipped"] == 1
  per = [sk.average_precision_score(y[:, c], s[:, c]) for c in np.flatnonzero(keep)]
  assert m["macro_map"] == pytest.approx(np.mean(per))
  assert m["macro_map"] == pytest.approx(sk.average_precision_score(y[:, keep], s[:, keep],
                                                                    average="macro"))
  pred = (s >= 0.5).astype(int)
  assert m["micro_f1"] == pytest.approx(sk.f1_score(y, pred, average="micro", zero_division=0))
  assert m["macro_f1"] == pytest.approx(sk.f1_score(y[:, keep], pred[:, keep], average="macro",
                                                    zero_division=0))
  batches = [sk.average_precision_score(y[i:i + 32].ravel(), s[i:i + 32].ravel())
             for i in range(0, len(y), 32)]
  assert m["official_batch_micro_map"] == pytest.approx(np.mean(batches))
  assert m["official_batch_micro_map"] != pytest.approx(m["micro_map"])


def test_average_precision_ties_and_no_positives():
  y = np.array([1, 0, 1, 0, 0, 1])
  s = np.array([0.9, 0.9, 0.5, 0.5, 0.1, 0.1])
  assert M.average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s))
  assert np.isnan(M.average_precision(np.zeros(4), np.arange(4.0)))
