"""One table per task (evaluation name) with the few metrics the task is judged by.

  classification, single-label: accuracy, macro F1
  classification, multi-label:  macro mAP, micro mAP
  segmentation:                 mIoU
  change detection:             F1 (of the change class), IoU
One row per group of points that differ only in their seed: encoders first, then the
reference rows (a random-init encoder, per-band statistics). A cell is
`mean ± std over seeds [95% CI]`: the CI is a percentile bootstrap over the test examples
(bootstrap.py; 1000 resamples, seed 0) of the seed-averaged metric, each resample scoring the
same examples for every seed. It needs the points' `<eval>/predictions.npz` (the feature
evaluators write them); without it the cell has no interval (dense tasks).
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np

from data_pipelines import storage
from spectralgpt_jax.evaluation import metrics as metrics_lib
from spectralgpt_jax.sweep import bootstrap
from spectralgpt_jax.sweep import points as points_lib
from spectralgpt_jax.sweep import table

JUDGED_BY = (("single", ("accuracy", "macro_f1")), ("multi", ("macro_map", "micro_map")),
             ("segmentation", ("miou",)), ("change", ("f1", "iou")))
# Readable row names for special `pretrained` values (anything else: the path).
ROW_NAMES = {"": "random-init encoder", "band_stats": "per-band statistics (mean, std)"}


def eval_names(results: list[dict[str, Any]]) -> list[str]:
  """Evaluation names ('<eval>/<metric>' prefixes) in sorted order."""
  return sorted({k.split("/", 1)[0] for r in results for k in r.get("metrics", {})})


def task_kind(name: str, results: list[dict[str, Any]]) -> tuple[str, tuple[str, ...]]:
  """(kind, metrics judged by) of evaluation `name`, from the metrics its points report."""
  keys = {k.split("/", 1)[1] for r in results for k in r.get("metrics", {})
          if k.startswith(name + "/")}
  if "accuracy" in keys:
    return JUDGED_BY[0]
  if "macro_map" in keys:
    return JUDGED_BY[1]
  if "miou" in keys:
    return JUDGED_BY[2]
  if "f1" in keys:
    return JUDGED_BY[3]
  return "other", tuple(sorted(k for k in keys if "/" not in k))[:2]


def row_name(overrides: dict[str, Any]) -> str:
  rest = {k: v for k, v in overrides.items() if k not in (table.SEED, "pretrained")}
  name = str(overrides.get("pretrained", ""))
  name = ROW_NAMES.get(name, name)
  extra = ", ".join(f"{k}={points_lib.format_value(v)}" for k, v in rest.items())
  return f"{name} ({extra})" if extra else name


def _predictions(root: str, result: dict[str, Any], name: str) -> dict[str, np.ndarray] | None:
  path = os.path.join(root, result.get("dir", ""), name, "predictions.npz")
  if not storage.exists(path):
    return None
  with np.load(io.BytesIO(storage.read_bytes(path)), allow_pickle=False) as f:
    out = {k: f[k] for k in f.files}
  missing = [k for k in ("ids", "labels", "scores", "label_type") if k not in out]
  if missing:
    raise ValueError(f"{path} lacks {missing}: written by an older release; rerun that point")
  return out


def seed_mean_ci(preds: list[dict[str, np.ndarray]], metrics: tuple[str, ...], *,
                 what: str = "the seeds' predictions", **kwargs
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Bootstrap (estimates, lows, highs), each [len(metrics)], of `metrics` averaged over the
  seeds' predictions (same test examples in the same order); `what` names them in errors."""
  ids = preds[0]["ids"]
  if any(p["ids"].shape != ids.shape or (p["ids"] != ids).any() for p in preds):
    raise ValueError(f"{what} cover different test examples")
  label_type = str(preds[0]["label_type"])
  scores = np.stack([p["scores"] for p in preds], axis=1)   # [N, seeds, K]

  def stat(labels, s):
    per_seed = [metrics_lib.classification(labels, s[:, i], label_type)[0]
                for i in range(s.shape[1])]
    return np.array([np.mean([m[k] for m in per_seed]) for k in metrics])
  return bootstrap.bootstrap_ci(stat, preds[0]["labels"], scores, **kwargs)


def task_rows(root: str, results: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
  """[{"name", "seeds", "n_test", "cells": {metric: (mean, std, lo, hi)}}] of evaluation `name`."""
  kind, judged = task_kind(name, results)
  rows = []
  for group in table.aggregate(results):
    members = [r for r in results if {k: v for k, v in r.get("overrides", {}).items()
                                      if k != table.SEED} == group["overrides"]]
    if not any(k.startswith(name + "/") for r in members for k in r.get("metrics", {})):
      continue
    preds = [_predictions(root, r, name) for r in members]
    usable = kind in ("single", "multi") and all(p is not None for p in preds)
    what = f"{name} predictions of {[r.get('dir', '') for r in members]}"
    ests, los, his = (seed_mean_ci(preds, judged, what=what) if usable
                      else ([math.nan] * len(judged),) * 3)
    cells = {}
    for m, est, lo, hi in zip(judged, ests, los, his):
      mean, std, _ = group["metrics"].get(f"{name}/{m}", (math.nan, math.nan, 0))
      if usable and not math.isclose(est, mean, rel_tol=1e-6, abs_tol=1e-9):
        raise ValueError(f"{what}: {m} recomputed from predictions.npz is {est:.6g}, the "
                         f"points' metrics.json say {mean:.6g}; rerun them with --overwrite")
      cells[m] = (mean, std, float(lo), float(hi))
    n_test = len(preds[0]["ids"]) if usable else None
    rows.append({"name": row_name(group["overrides"]), "seeds": group["n"], "n_test": n_test,
                 "cells": cells, "kind": kind})
  reference = set(ROW_NAMES.values())
  return sorted(rows, key=lambda r: r["name"] in reference)   # encoders, then references


def all_rows(root: str, results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
  """{evaluation name: task_rows} for every evaluation with rows."""
  tasks = {name: task_rows(root, results, name) for name in eval_names(results)}
  return {name: rows for name, rows in tasks.items() if rows}


def _cell(mean: float, std: float, lo: float, hi: float, seeds: int) -> str:
  if math.isnan(mean):
    return "nan"
  text = f"{mean:.3f} ± {std:.3f}" if seeds > 1 else f"{mean:.3f}"
  return text + (f" [{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else " [no CI]")


def to_markdown(tasks: dict[str, list[dict[str, Any]]]) -> str:
  """`## <eval> (<kind>)` and its table for every evaluation of `all_rows`."""
  out = [f"Cells: mean ± std over seeds (the value, for one seed) [{bootstrap.LEVEL:.0%} "
         f"bootstrap CI over test examples, {bootstrap.N_RESAMPLES} resamples; 'no CI' without "
         "per-example predictions]. Every metric of every point: results_all.md, results.csv.",
         ""]
  for name, rows in tasks.items():
    judged = list(rows[0]["cells"])
    out += [f"## {name} ({rows[0]['kind']})", "",
            "| encoder | seeds | test examples | " + " | ".join(judged) + " |",
            "|---|---|---|" + "---|" * len(judged)]
    for row in rows:
      cells = [_cell(*row["cells"][m], row["seeds"]) for m in judged]
      out.append(f"| {row['name']} | {row['seeds']} | {row['n_test'] or 'n/a'} | "
                 + " | ".join(cells) + " |")
    out.append("")
  return "\n".join(out)
