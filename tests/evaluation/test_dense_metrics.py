"""Dense metrics against scikit-learn on fixed predictions, with ignored pixels and absent
classes."""

import numpy as np
import pytest

from spectralgpt_jax.evaluation import dense_metrics as D

sk = pytest.importorskip("sklearn.metrics")

K = 6  # class 5 is in neither truth nor prediction; class 4 only in prediction


def _maps(seed=0, shape=(3, 40, 50)):
  rng = np.random.default_rng(seed)
  truth = rng.integers(0, 4, shape)
  pred = np.where(rng.uniform(size=shape) < 0.7, truth, rng.integers(0, 5, shape))
  truth[rng.uniform(size=shape) < 0.1] = D.IGNORE
  pred[truth == D.IGNORE] = 5  # anything may be predicted on ignored pixels: never counted
  return truth, pred


def _accumulate(truth, pred, k=K):
  acc = D.ConfusionAccumulator(k)
  for t, p in zip(truth, pred):  # image by image
    acc.update(t, p)
  return acc


def test_confusion_counts_match_sklearn_over_valid_pixels():
  truth, pred = _maps()
  acc = _accumulate(truth, pred)
  valid = truth != D.IGNORE
  expected = sk.confusion_matrix(truth[valid], pred[valid], labels=range(K))
  np.testing.assert_array_equal(acc.counts, expected)
  assert acc.counts.dtype == np.int64
  assert acc.counts.sum() == valid.sum()


def test_segmentation_metrics_match_sklearn():
  truth, pred = _maps()
  valid = truth != D.IGNORE
  t, p = truth[valid], pred[valid]
  m = D.segmentation_metrics(_accumulate(truth, pred).counts)
  assert m["overall_accuracy"] == pytest.approx(sk.accuracy_score(t, p))
  present = [0, 1, 2, 3, 4]
  iou = sk.jaccard_score(t, p, labels=present, average=None)
  f1 = sk.f1_score(t, p, labels=present, average=None)
  np.testing.assert_allclose([m[f"iou/{c}"] for c in present], iou)
  np.testing.assert_allclose([m[f"f1/{c}"] for c in present], f1)
  assert m["iou/4"] == 0.0           # predicted, never true: a real class scoring 0
  assert np.isnan(m["iou/5"]) and np.isnan(m["f1/5"])   # absent from both: left out
  assert m["miou"] == pytest.approx(sk.jaccard_score(t, p, labels=present, average="macro"))
  assert m["mean_f1"] == pytest.approx(sk.f1_score(t, p, labels=present, average="macro"))
  assert np.isnan(m["official_miou_all_classes"])  # the official mean over all K is NaN here
  assert m["num_pixels"] == valid.sum()


def test_ignored_classes_leave_the_means_only():
  truth, pred = _maps(seed=1)
  valid = truth != D.IGNORE
  t, p = truth[valid], pred[valid]
  counts = _accumulate(truth, pred).counts
  m = D.segmentation_metrics(counts, ignored_classes=(0,))
  assert m["miou"] == pytest.approx(sk.jaccard_score(t, p, labels=[1, 2, 3, 4], average="macro"))
  assert m["overall_accuracy"] == pytest.approx(sk.accuracy_score(t, p))
  assert m["iou/0"] == pytest.approx(sk.jaccard_score(t, p, labels=[0], average=None)[0])
  with pytest.raises(ValueError, match="ignored_classes"):
    D.segmentation_metrics(counts, ignored_classes=(K,))


def test_official_miou_includes_class_zero():
  truth, pred = _maps(seed=2)
  valid = truth != D.IGNORE
  t, p = truth[valid], pred[valid]
  counts = _accumulate(truth, pred, k=5).counts  # every class 0..4 occurs
  m = D.segmentation_metrics(counts, ignored_classes=(0,))
  assert m["official_miou_all_classes"] == pytest.approx(
      sk.jaccard_score(t, p, labels=range(5), average="macro"))
  assert m["official_miou_all_classes"] != pytest.approx(m["miou"])


def test_change_detection_metrics_match_sklearn():
  rng = np.random.default_rng(3)
  truth = (rng.uniform(size=(2, 64, 64)) < 0.1).astype(np.int64)
  pred = np.where(rng.uniform(size=truth.shape) < 0.8, truth, 1 - truth)
  truth[:, :5] = D.IGNORE
  acc = _accumulate(truth, pred, k=2)
  valid = truth != D.IGNORE
  t, p = truth[valid], pred[valid]
  m = D.change_detection_metrics(acc.counts)
  assert m["precision"] == pytest.approx(sk.precision_score(t, p))
  assert m["recall"] == pytest.approx(sk.recall_score(t, p))
  assert m["f1"] == pytest.approx(sk.f1_score(t, p))
  assert m["iou"] == pytest.approx(sk.jaccard_score(t, p))
  assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == valid.sum()
  official = D.official_oscd_metrics(acc.counts)
  assert official["official_oscd_f1"] == m["f1"] and "f1" not in official


def test_no_change_everywhere_scores_zero_like_sklearn():
  truth = np.zeros((8, 8), np.int64)
  truth[2:4, 2:4] = 1
  acc = D.ConfusionAccumulator(2)
  acc.update(truth, np.zeros_like(truth))
  m = D.change_detection_metrics(acc.counts)
  t, p = truth.ravel(), np.zeros(64, np.int64)
  assert m["f1"] == sk.f1_score(t, p, zero_division=0) == 0.0
  assert m["precision"] == sk.precision_score(t, p, zero_division=0) == 0.0
  assert m["recall"] == 0.0 and m["iou"] == 0.0
  assert m["overall_accuracy"] == pytest.approx(60 / 64)


def test_merge_equals_one_pass_and_process_sum_is_identity_on_one_host():
  truth, pred = _maps(seed=4)
  whole = _accumulate(truth, pred)
  a, b = _accumulate(truth[:1], pred[:1]), _accumulate(truth[1:], pred[1:])
  np.testing.assert_array_equal(a.merge(b).counts, whole.counts)
  np.testing.assert_array_equal(whole.sum_across_processes().counts, whole.counts)
  with pytest.raises(ValueError, match="merge"):
    a.merge(D.ConfusionAccumulator(2))


def test_bad_input_names_the_image():
  acc = D.ConfusionAccumulator(2)
  with pytest.raises(ValueError, match="truth of paris holds label 2"):
    acc.update(np.array([[0, 2]]), np.array([[0, 1]]), name="paris")
  with pytest.raises(ValueError, match="prediction of rennes holds class 3"):
    acc.update(np.array([[0, 1]]), np.array([[3, 1]]), name="rennes")
  with pytest.raises(ValueError, match="shape"):
    acc.update(np.zeros((2, 2)), np.zeros((2, 3)), name="x")
  valid = np.array([[True, False]])
  acc.update(np.array([[1, 1]]), np.array([[1, 0]]), valid)
  np.testing.assert_array_equal(acc.counts, [[0, 0], [0, 1]])
