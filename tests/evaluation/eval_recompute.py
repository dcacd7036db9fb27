"""Recomputes an evaluator's reported metrics from its saved prediction files, twice: with the
project's metric code and with scikit-learn (an independent implementation)."""

import pathlib

import numpy as np
import pytest

from spectralgpt_jax.evaluation import dense_metrics as D, metrics as M

sk = pytest.importorskip("sklearn.metrics")


def sklearn_classification(labels: np.ndarray, scores: np.ndarray, label_type: str,
                           batch_size: int) -> dict[str, float]:
  """The headline metrics of evaluation.metrics, computed with scikit-learn."""
  if label_type == "single":
    k = scores.shape[1]
    pred = scores.argmax(1)
    cm = sk.confusion_matrix(labels, pred, labels=np.arange(k))
    out = {"accuracy": sk.accuracy_score(labels, pred),
           "mean_per_class_accuracy": sk.balanced_accuracy_score(labels, pred),
           "macro_f1": sk.f1_score(labels, pred, average="macro", zero_division=0)}
    return out | {"confusion_matrix": cm}
  y = np.asarray(labels) > 0.5
  pos = y.any(0)
  pred = scores >= 0.5
  aps = [sk.average_precision_score(y[:, c], scores[:, c]) for c in np.flatnonzero(pos)]
  batch_aps = [sk.average_precision_score(y[i:i + batch_size].ravel(),
                                          scores[i:i + batch_size].ravel())
               for i in range(0, len(y), batch_size) if y[i:i + batch_size].any()]
  return {"micro_map": sk.average_precision_score(y.ravel(), scores.ravel()),
          "macro_map": float(np.mean(aps)),
          "micro_f1": sk.f1_score(y, pred, average="micro", zero_division=0),
          "macro_f1": sk.f1_score(y[:, pos], pred[:, pos], average="macro", zero_division=0),
          "official_batch_micro_map": float(np.mean(batch_aps))}


def check_predictions_file(path: pathlib.Path, reported: dict[str, float],
                           confusion=None) -> None:
  """`reported` (the evaluator's metrics, un-prefixed) equal those of predictions.npz at `path`:
  every one recomputed with evaluation.metrics, the headline ones with scikit-learn."""
  with np.load(path) as z:
    labels, scores, label_type = z["labels"], z["scores"], str(z["label_type"])
    batch = int(z["official_batch_size"])
  assert scores.dtype == np.float32
  ours, cm = M.classification(labels, scores, label_type, batch_size=batch)
  for key, value in ours.items():
    assert reported[key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), key
  ref = sklearn_classification(labels, scores, label_type, batch)
  if label_type == "single":
    np.testing.assert_array_equal(cm, ref.pop("confusion_matrix"))
    if confusion is not None:
      np.testing.assert_array_equal(np.asarray(confusion), cm)
  for key, value in ref.items():
    assert reported[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def dense_confusion_sklearn(pairs, num_classes: int) -> np.ndarray:
  """[K, K] confusion of (truth [H, W] with -1 ignored, class map [H, W]) pairs (sklearn)."""
  t = np.concatenate([np.asarray(a).ravel() for a, _ in pairs])
  p = np.concatenate([np.asarray(b).ravel() for _, b in pairs])
  keep = t >= 0
  return sk.confusion_matrix(t[keep], p[keep], labels=np.arange(num_classes))


def check_dense_metrics(pairs, num_classes: int, reported: dict[str, float],
                        change: bool) -> None:
  """`reported` equal the metrics of the saved class maps against the truths: per-class IoU
  and F1, accuracy (segmentation) or change precision / recall / F1 / IoU and counts, from
  scikit-learn on the pixels and from dense_metrics on their confusion matrix."""
  t = np.concatenate([np.asarray(a).ravel() for a, _ in pairs])
  p = np.concatenate([np.asarray(b).ravel() for _, b in pairs])
  t, p = t[t >= 0], p[t >= 0]
  cm = dense_confusion_sklearn(pairs, num_classes)
  ours = (D.change_detection_metrics(cm) if change else D.segmentation_metrics(cm))
  for key, value in ours.items():
    assert reported[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
  labels = np.arange(num_classes)
  if change:
    ref = {"precision": sk.precision_score(t, p, zero_division=0),
           "recall": sk.recall_score(t, p, zero_division=0),
           "f1": sk.f1_score(t, p, zero_division=0),
           "iou": sk.jaccard_score(t, p, zero_division=0)}
    (tn, fp), (fn, tp) = cm.tolist()
    ref.update(tp=tp, fp=fp, fn=fn, tn=tn)
  else:
    # NaN for a class in neither truth nor prediction (dense_metrics' convention).
    absent = ~np.isin(labels, np.concatenate([t, p]))
    iou = np.where(absent, np.nan, sk.jaccard_score(t, p, labels=labels, average=None,
                                                    zero_division=0))
    f1 = np.where(absent, np.nan, sk.f1_score(t, p, labels=labels, average=None,
                                              zero_division=0))
    ref = {"overall_accuracy": sk.accuracy_score(t, p), "miou": float(np.nanmean(iou)),
           "mean_f1": float(np.nanmean(f1)), "num_pixels": t.size,
           **{f"iou/{c}": iou[c] for c in labels}, **{f"f1/{c}": f1[c] for c in labels}}
  for key, value in ref.items():
    assert reported[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
