"""Classification metrics over a whole split (numpy; computed once, never per-batch averages
except `official_batch_micro_map`, which reproduces the official number).

Single-label (labels [N] int, scores [N, K]; prediction = argmax):
  accuracy, per-class accuracy (recall of each class; classes absent from labels are NaN and
  left out of `mean_per_class_accuracy`), macro F1 (sklearn's default: over classes present
  in labels or predictions, zero_division=0), confusion matrix [K, K] (rows = true class).
Multi-label (labels [N, K] {0,1}, scores [N, K]; higher = more likely):
  micro_map: average precision of all N*K (label, score) pairs;
  macro_map: mean of per-class AP over classes with at least one positive (the others are
    skipped and counted in `map_classes_skipped`);
  micro_f1 / macro_f1 at `scores >= threshold` (0.5); macro over classes with positives;
  official_batch_micro_map: the official engine_finetune_BE number (torchmetrics
    multilabel_average_precision(average="micro") per batch of `batch_size` consecutive
    examples, averaged over batches; batches without positives are skipped).
AP is sklearn's `average_precision_score` (step-wise, ties grouped), reimplemented here.

Evaluators score `saved_scores(scores)`, the float32 array their prediction files hold, so
that the files reproduce every reported metric (float64 scores that tie in float32 would
otherwise rank differently in the file than in the report).
"""

from __future__ import annotations

import numpy as np

SAVED_DTYPE = np.float32  # dtype of the scores in prediction files


def saved_scores(scores) -> np.ndarray:
  """`scores` as prediction files hold them (float32): the array to score and to save."""
  return np.asarray(scores, SAVED_DTYPE)


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
  """Binary AP of flat labels y {0,1} and scores s; NaN without positives."""
  y, s = np.asarray(y, np.float64).reshape(-1), np.asarray(s, np.float64).reshape(-1)
  if y.sum() <= 0:
    return float("nan")
  order = np.argsort(-s, kind="mergesort")
  y, s = y[order], s[order]
  last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]   # last index of each distinct score
  tps = np.cumsum(y)[last]
  precision = tps / (last + 1)
  recall = tps / tps[-1]
  return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
  den = 2 * tp + fp + fn
  return np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
  """[K, K] int64 counts, rows = true class, columns = predicted class."""
  cm = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(cm, (np.asarray(labels, np.int64), np.asarray(preds, np.int64)), 1)
  return cm


def single_label(labels: np.ndarray, scores: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
  """(metrics, confusion matrix [K, K]) of single-label `scores` [N, K] against `labels` [N]."""
  labels = np.asarray(labels, np.int64)
  k = scores.shape[1]
  cm = confusion_matrix(labels, np.argmax(scores, axis=1), k)
  tp, support, predicted = np.diag(cm), cm.sum(1), cm.sum(0)
  with np.errstate(invalid="ignore", divide="ignore"):
    per_class = np.where(support > 0, tp / support, np.nan)
  present = (support > 0) | (predicted > 0)
  f1 = _f1(tp, predicted - tp, support - tp)
  out = {"accuracy": float(tp.sum() / max(1, labels.size)),
         "mean_per_class_accuracy": float(np.nanmean(per_class)) if (support > 0).any()
         else float("nan"),
         "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
         "num_examples": float(labels.size)}
  out.update({f"per_class_accuracy/{c}": float(per_class[c]) for c in range(k)})
  return out, cm


def multi_label(labels: np.ndarray, scores: np.ndarray, *, threshold: float = 0.5,
                batch_size: int | None = None) -> dict[str, float]:
  """Metrics of multi-label `scores` [N, K] against multi-hot `labels` [N, K]."""
  y = np.asarray(labels) > 0.5
  s = np.asarray(scores, np.float64)
  has_pos = y.any(axis=0)
  aps = np.array([average_precision(y[:, c], s[:, c]) if has_pos[c] else np.nan
                  for c in range(y.shape[1])])
  pred = s >= threshold
  tp, fp, fn = (pred & y).sum(0), (pred & ~y).sum(0), (~pred & y).sum(0)
  out = {"micro_map": average_precision(y, s),
         "macro_map": float(np.nanmean(aps)) if has_pos.any() else float("nan"),
         "map_classes_skipped": float((~has_pos).sum()),
         "micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())),
         "macro_f1": float(_f1(tp, fp, fn)[has_pos].mean()) if has_pos.any() else 0.0,
         "num_examples": float(y.shape[0])}
  out.update({f"per_class_ap/{c}": float(a) for c, a in enumerate(aps)})
  if batch_size:
    out["official_batch_micro_map"] = official_batch_micro_map(y, s, batch_size)
  return out


def official_batch_micro_map(labels: np.ndarray, scores: np.ndarray, batch_size: int) -> float:
  """Mean over consecutive batches of the batch's micro AP (the official BigEarthNet number)."""
  n = labels.shape[0]
  aps = [average_precision(labels[i:i + batch_size], scores[i:i + batch_size])
         for i in range(0, n, batch_size)]
  aps = [a for a in aps if not np.isnan(a)]
  return float(np.mean(aps)) if aps else float("nan")


def classification(labels: np.ndarray, scores: np.ndarray, label_type: str, *,
                   batch_size: int | None = None) -> tuple[dict[str, float], np.ndarray | None]:
  """(metrics, confusion matrix or None) for `label_type` "single" or "multi"."""
  if label_type == "single":
    return single_label(labels, scores)
  if label_type == "multi":
    return multi_label(labels, scores, batch_size=batch_size), None
  raise ValueError(f"label_type must be 'single' or 'multi', got {label_type!r}")


def main_metric(label_type: str) -> str:
  """The metric that selects hyperparameters by default (paper metrics)."""
  return "accuracy" if label_type == "single" else "macro_map"


def confusion_png(cm: np.ndarray, cell: int = 12) -> bytes:
  """Row-normalised confusion matrix as a PNG (dark = many; `cell` pixels per entry)."""
  from spectralgpt_jax.train.panels import encode_png  # pylint: disable=g-import-not-at-top
  rows = cm.sum(axis=1, keepdims=True)
  frac = np.where(rows > 0, cm / np.maximum(rows, 1), 0.0)
  grey = (255 * (1.0 - frac)).astype(np.uint8)
  img = np.repeat(np.repeat(grey, cell, axis=0), cell, axis=1)
  return encode_png(np.stack([img] * 3, axis=-1))
