"""Dense (per-pixel) metrics of segmentation and change detection over a whole split.

Every metric comes from one confusion matrix of counts over the split's valid pixels
(rows = true class, columns = predicted class), accumulated image by image or tile by tile:

    acc = ConfusionAccumulator(num_classes=2)
    for truth, pred in ...:              # [H, W] int each; truth IGNORE (-1) = not scored
      acc.update(truth, pred)
    acc = acc.sum_across_processes()     # several processes, each counting its own images:
                                         # every process gets the split's counts
    metrics = change_detection_metrics(acc.counts)

Segmentation (`segmentation_metrics`, K classes):
  overall_accuracy   correct valid pixels / valid pixels;
  iou/<c>            TP / (TP + FP + FN) of class c; NaN when class c is absent from both
                     truth and prediction (0 / 0);
  f1/<c>             2 TP / (2 TP + FP + FN), NaN in the same case;
  miou, mean_f1      means over the classes not in `ignored_classes`, absent (NaN) classes
                     left out (the usual nanmean);
  official_miou_all_classes   the official SegMunich number: plain mean of the IoU of all K
                     classes, class 0 included, as the official confusion-matrix code does; it
                     is NaN when any class is absent from both truth and prediction.
Change detection (`change_detection_metrics`, class 1 = change): precision, recall, f1 and iou
  of the change class from TP / FP / FN summed over the split, 0 where the denominator is 0
  (scikit-learn's zero_division=0: predicting "no change" everywhere scores f1 = 0).
OSCD official protocol (`official_oscd_metrics`): the same formulas on the counts of the
  official test tiles (tiling.official_oscd_tiles: 128 px, stride 63, last partial batch
  dropped; a pixel in k overlapping tiles counts k times), under `official_oscd_*` names.
  Where nothing is predicted as change the official code divides 0 by 0 (NaN); here it is 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

IGNORE = -1  # label value of pixels that are not scored (no data, outside the image)


@dataclasses.dataclass
class ConfusionAccumulator:
  """Streaming [K, K] int64 confusion counts (rows = truth, columns = prediction).

  Attributes:
    num_classes: K.
    counts: [K, K] int64, zeros at construction.
  """

  num_classes: int
  counts: np.ndarray = dataclasses.field(default=None)  # type: ignore[assignment]

  def __post_init__(self):
    if self.num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
    if self.counts is None:
      self.counts = np.zeros((self.num_classes, self.num_classes), np.int64)
    self.counts = np.asarray(self.counts, np.int64)
    if self.counts.shape != (self.num_classes, self.num_classes):
      raise ValueError(f"counts has shape {self.counts.shape}, expected "
                       f"{(self.num_classes, self.num_classes)}")

  def update(self, truth: np.ndarray, pred: np.ndarray, valid: np.ndarray | None = None,
             *, name: str = "") -> None:
    """Adds the pixels of one image or batch.

    Args:
      truth: [...] int labels in [0, K) or IGNORE (-1, not counted).
      pred: [...] int predicted classes in [0, K), same shape (any value where truth is
        ignored or `valid` is False).
      valid: optional [...] bool, False = not counted (e.g. pixels outside the scored area).
      name: the image or record key, for error messages.
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    where = f" of {name}" if name else ""
    if truth.shape != pred.shape:
      raise ValueError(f"truth{where} has shape {truth.shape} but prediction {pred.shape}")
    scored = truth != IGNORE
    if valid is not None:
      valid = np.asarray(valid, bool)
      if valid.shape != truth.shape:
        raise ValueError(f"valid mask{where} has shape {valid.shape}, truth {truth.shape}")
      scored &= valid
    t, p = truth[scored].astype(np.int64), pred[scored].astype(np.int64)
    k = self.num_classes
    if t.size and (t.min() < 0 or t.max() >= k):
      bad = t[(t < 0) | (t >= k)][0]
      raise ValueError(f"truth{where} holds label {bad}: labels must be in [0, {k}) or "
                       f"{IGNORE} (ignored)")
    if p.size and (p.min() < 0 or p.max() >= k):
      bad = p[(p < 0) | (p >= k)][0]
      raise ValueError(f"prediction{where} holds class {bad} outside [0, {k})")
    self.counts += np.bincount(t * k + p, minlength=k * k).reshape(k, k)

  def merge(self, other: ConfusionAccumulator) -> ConfusionAccumulator:
    """A new accumulator with the counts of both (same K)."""
    if other.num_classes != self.num_classes:
      raise ValueError(f"cannot merge confusion counts of {other.num_classes} classes into "
                       f"{self.num_classes}")
    return ConfusionAccumulator(self.num_classes, self.counts + other.counts)

  def sum_across_processes(self) -> ConfusionAccumulator:
    """The counts summed over all JAX processes (each process counted its own images, or
    none); itself when there is one process. Every process must call it."""
    from spectralgpt_jax.evaluation import multihost  # pylint: disable=g-import-not-at-top
    return ConfusionAccumulator(self.num_classes, multihost.sum_across_processes(self.counts))


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
  """num / den elementwise, `empty` where den == 0."""
  num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
  return np.where(den > 0, num / np.where(den > 0, den, 1.0), empty)


def _per_class(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(TP, FP, FN) per class, [K] int64 each."""
  counts = np.asarray(counts, np.int64)
  if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
    raise ValueError(f"confusion counts must be [K, K], got shape {counts.shape}")
  tp = np.diag(counts)
  return tp, counts.sum(0) - tp, counts.sum(1) - tp


def class_iou(counts: np.ndarray) -> np.ndarray:
  """[K] IoU per class, NaN for classes absent from truth and prediction."""
  tp, fp, fn = _per_class(counts)
  return _ratio(tp, tp + fp + fn, np.nan)


def class_f1(counts: np.ndarray) -> np.ndarray:
  """[K] F1 per class, NaN for classes absent from truth and prediction."""
  tp, fp, fn = _per_class(counts)
  return _ratio(2 * tp, 2 * tp + fp + fn, np.nan)


def _nanmean(values: np.ndarray) -> float:
  finite = values[~np.isnan(values)]
  return float(finite.mean()) if finite.size else float("nan")


def official_miou_all_classes(counts: np.ndarray) -> float:
  """Mean IoU over all K classes, class 0 included, NaN if any class is absent (official)."""
  return float(np.mean(class_iou(counts)))


def segmentation_metrics(counts: np.ndarray, *,
                         ignored_classes: Sequence[int] = ()) -> dict[str, float]:
  """Segmentation metrics of confusion `counts` [K, K] (module docstring).

  `ignored_classes`: classes left out of `miou` and `mean_f1` (e.g. a background class);
  their pixels still count in `overall_accuracy` and their own `iou/<c>`, `f1/<c>`.
  """
  counts = np.asarray(counts, np.int64)
  k = counts.shape[0]
  iou, f1 = class_iou(counts), class_f1(counts)
  bad = [c for c in ignored_classes if not 0 <= int(c) < k]
  if bad:
    raise ValueError(f"ignored_classes {bad} are not classes of a {k}-class confusion matrix")
  kept = np.setdiff1d(np.arange(k), np.asarray(ignored_classes, np.int64))
  total = int(counts.sum())
  out = {"overall_accuracy": float(np.trace(counts) / total) if total else float("nan"),
         "miou": _nanmean(iou[kept]),
         "mean_f1": _nanmean(f1[kept]),
         "official_miou_all_classes": official_miou_all_classes(counts),
         "num_pixels": float(total)}
  out.update({f"iou/{c}": float(iou[c]) for c in range(k)})
  out.update({f"f1/{c}": float(f1[c]) for c in range(k)})
  return out


def change_detection_metrics(counts: np.ndarray, *, prefix: str = "") -> dict[str, float]:
  """Precision, recall, F1 and IoU of class 1 (change) of a [2, 2] confusion matrix, plus
  the counts and overall accuracy; keys start with `prefix`."""
  counts = np.asarray(counts, np.int64)
  if counts.shape != (2, 2):
    raise ValueError(f"change detection needs a [2, 2] confusion matrix, got {counts.shape}")
  (tn, fp), (fn, tp) = counts.tolist()
  total = tn + fp + fn + tp
  out = {"precision": float(_ratio(tp, tp + fp, 0.0)),
         "recall": float(_ratio(tp, tp + fn, 0.0)),
         "f1": float(_ratio(2 * tp, 2 * tp + fp + fn, 0.0)),
         "iou": float(_ratio(tp, tp + fp + fn, 0.0)),
         "overall_accuracy": float(_ratio(tp + tn, total, np.nan)),
         "tp": float(tp), "fp": float(fp), "fn": float(fn), "tn": float(tn)}
  return {prefix + k: v for k, v in out.items()}


def official_oscd_metrics(counts: np.ndarray) -> dict[str, float]:
  """Change metrics of the counts over the official OSCD test tiles, named `official_oscd_*`."""
  return change_detection_metrics(counts, prefix="official_oscd_")
