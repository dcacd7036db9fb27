"""PNG plots of a sweep (matplotlib, Agg backend; nothing is shown).

  metric_vs_<key>.png   each metric against a swept numeric override (learning rate, L2
                        strength, k, ...), one line per combination of the other overrides,
                        mean +- std over seeds; log x when the values span two decades or more
  metric_vs_l2.png      the linear probe's selection metric against its L2 strength (from the
                        "<eval>/l2=<s>/<metric>" entries of every point), one line per
                        eval and combination of the overrides, mean +- std over seeds, log x
  metric_vs_step.png    each metric against the pretraining checkpoint step, when `pretrained`
                        varies over checkpoints of a run (points.checkpoint_step)
  task_intervals.png    one panel per task: each row's main metric (mean over seeds, dot) with
                        its bootstrap 95% interval over test examples (bar) and the seeds'
                        spread (thin cap), rows as in results.md (task_tables.py)
  <point>/<eval>/per_class.png, confusion.png   from the point's predictions.npz: per-class
                        accuracy and confusion matrix (single-label; unless the evaluator wrote
                        its own confusion.png) or per-class AP (multi)
"""

from __future__ import annotations

import io
import math
import os
import re
from collections import defaultdict
from typing import Any

import numpy as np

from data_pipelines import storage
from spectralgpt_jax.sweep import points as points_lib
from spectralgpt_jax.sweep import table

PREDICTIONS = "predictions.npz"


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg", force=True)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _numeric(v: Any) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def swept_axes(results: list[dict[str, Any]]) -> dict[str, Any]:
  """{axis name: function(result) -> x or None}: numeric overrides and checkpoint steps."""
  axes = {}
  for key in table.override_keys(results):
    if key == table.SEED:
      continue
    vals = [r.get("overrides", {}).get(key) for r in results]
    if all(_numeric(v) for v in vals) and len(set(vals)) > 1:
      axes[key] = lambda r, k=key: r["overrides"].get(k)
    elif key == "pretrained":
      steps = [points_lib.checkpoint_step(v) for v in vals]
      if len({s for s in steps if s is not None}) > 1:
        axes["step"] = lambda r: points_lib.checkpoint_step(r["overrides"].get("pretrained"))
  return axes


def _series(results, x_of, axis_key: str, metric: str):
  """{label of the other overrides: sorted [(x, mean, std)]} over seeds."""
  groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
  for r in results:
    x, y = x_of(r), r.get("metrics", {}).get(metric)
    if x is None or not points_lib.finite(y):
      continue
    other = {k: v for k, v in r.get("overrides", {}).items()
             if k not in (table.SEED, axis_key)
             and not (axis_key == "step" and k == "pretrained" and
                      points_lib.checkpoint_step(v) is not None)}
    if axis_key == "step":   # lines per run, not per checkpoint
      run = str(r["overrides"].get("pretrained", ""))
      other["run"] = run.split("/checkpoints/")[0] if "/checkpoints/" in run else run
    label = ",".join(f"{k.rsplit('.', 1)[-1]}={points_lib.format_value(v)}"
                     for k, v in other.items()) or "all"
    groups[label][float(x)].append(float(y))
  return {lab: sorted((x, float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                      for x, v in xs.items()) for lab, xs in groups.items()}


def plot_metric_vs(results: list[dict[str, Any]], axis_key: str, x_of, path: str) -> str | None:
  """One panel per metric; returns the path, or None when there is nothing to draw."""
  metrics = [m for m in table.metric_keys(results, headline=True)
             if not m.endswith("/best_l2") and any(len(s) > 1 for s in _series(results, x_of, axis_key, m).values())]
  if not metrics:
    return None
  plt = _pyplot()
  cols = min(3, len(metrics))
  rows = math.ceil(len(metrics) / cols)
  fig, axs = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
  xs_all = [r for r in (x_of(r) for r in results) if r is not None]
  logx = min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 100
  for ax, m in zip(axs.flat, metrics):
    for label, pts in _series(results, x_of, axis_key, m).items():
      x, y, e = (np.array(v) for v in zip(*pts))
      ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=label)
    ax.set_title(m, fontsize=9)
    ax.set_xlabel(axis_key)
    if logx:
      ax.set_xscale("log")
    ax.grid(alpha=0.3)
  for ax in list(axs.flat)[len(metrics):]:
    ax.axis("off")
  axs.flat[0].legend(fontsize=7)
  fig.tight_layout()
  _save(fig, path)
  plt.close(fig)
  return path


def _per_class(pred) -> tuple[np.ndarray, np.ndarray | None, str]:
  """(per-class values, confusion matrix or None, what the values are)."""
  labels, scores = np.asarray(pred["labels"]), np.asarray(pred["scores"], np.float64)
  k = scores.shape[1]
  if str(pred["label_type"]) == "multi":
    ap = np.full(k, np.nan)
    for c in range(k):
      y = labels[:, c] > 0
      if y.any():
        order = np.argsort(-scores[:, c], kind="mergesort")
        hits = y[order]
        prec = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        ap[c] = float((prec * hits).sum() / hits.sum())
    return ap, None, "average precision"
  pred_cls = scores.argmax(1)
  cm = np.zeros((k, k), np.int64)
  np.add.at(cm, (labels.astype(np.int64), pred_cls), 1)
  with np.errstate(invalid="ignore", divide="ignore"):
    acc = np.diag(cm) / cm.sum(1)
  return acc, cm, "accuracy (recall)"


def _save(fig, path: str) -> None:
  """The figure as PNG at `path` (a local path or a URL: data_pipelines.storage)."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=90)
  storage.write_bytes(path, buf.getvalue())


def plot_predictions(npz_path: str) -> list[str]:
  """per_class.png (and confusion_matrix.png for single-label) beside `npz_path`."""
  with np.load(io.BytesIO(storage.read_bytes(npz_path)), allow_pickle=False) as f:
    pred = {k: f[k] for k in f.files}
  if "scores" not in pred or "labels" not in pred or pred["scores"].ndim != 2:
    return []
  values, cm, what = _per_class(pred)
  folder, plt, out = os.path.dirname(npz_path), _pyplot(), []
  k = len(values)
  fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * k + 1.5), 3.2))
  ax.bar(np.arange(k), np.nan_to_num(values), color="tab:blue")
  ax.set_xticks(np.arange(k))
  ax.set_xlabel("class")
  ax.set_ylabel(what)
  ax.set_ylim(0, 1.05)
  ax.set_title(f"per class ({int((~np.isnan(values)).sum())}/{k} classes present in test)",
               fontsize=9)
  fig.tight_layout()
  out.append(os.path.join(folder, "per_class.png"))
  _save(fig, out[-1])
  plt.close(fig)
  if cm is not None and not storage.exists(os.path.join(folder, "confusion.png")):
    # (the feature evaluators write their own confusion.png; others may not)
    fig, ax = plt.subplots(figsize=(max(3.5, 0.4 * k + 1.5),) * 2)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
      ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    out.append(os.path.join(folder, "confusion_matrix.png"))
    _save(fig, out[-1])
    plt.close(fig)
  return out


_L2 = re.compile(r"^(?P<eval>[^/]+)/l2=(?P<l2>[^/]+)/(?P<metric>[^/]+)$")


def l2_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Per-strength entries as pseudo-results {"overrides": {..., "l2"}, "metrics": {e/m: v}}."""
  out = []
  for r in results:
    by_l2: dict[float, dict[str, float]] = defaultdict(dict)
    for k, v in r.get("metrics", {}).items():
      m = _L2.match(k)
      if m and not m["metric"].startswith("val_"):
        try:
          by_l2[float(m["l2"])][f"{m['eval']}/{m['metric']}"] = v
        except ValueError:
          continue
    for l2, metrics in by_l2.items():
      out.append({"overrides": {**r.get("overrides", {}), "l2": l2}, "metrics": metrics,
                  "seed": r.get("seed")})
  return out


def plot_task_intervals(tasks: dict[str, list[dict[str, Any]]], path: str) -> str | None:
  """Main metric of every row of every task with its interval (or only its std over seeds
  where a task has no interval, e.g. two test cities); None if no row has either."""
  tasks = {n: rows for n, rows in tasks.items()
           if any(not math.isnan(r["cells"][next(iter(r["cells"]))][2]) or r["seeds"] > 1
                  for r in rows)}
  if not tasks:
    return None
  plt = _pyplot()
  fig, axs = plt.subplots(len(tasks), 1, figsize=(8.5, 0.5 + 0.6 * sum(map(len, tasks.values()))
                                                  + 0.6 * len(tasks)), squeeze=False)
  for ax, (name, rows) in zip(axs.flat, tasks.items()):
    metric = next(iter(rows[0]["cells"]))
    for i, row in enumerate(rows):
      mean, std, lo, hi = row["cells"][metric]
      if not math.isnan(lo):
        ax.plot([lo, hi], [i, i], color="tab:blue", lw=4, alpha=0.35, solid_capstyle="butt")
      ax.errorbar([mean], [i], xerr=[std], fmt="o", color="tab:blue", capsize=3)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['name'][:60]} ({r['seeds']} seeds)" for r in rows], fontsize=8)
    ax.invert_yaxis()
    n = rows[0].get("n_test")
    ci = f"bar: 95% bootstrap CI, {n} test examples" if n else "no interval"
    ax.set_title(f"{name}: {metric}  ({ci}; caps: std over seeds)", fontsize=8)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3, axis="x")
  fig.tight_layout()
  _save(fig, path)
  plt.close(fig)
  return path


def write_plots(root: str, results: list[dict[str, Any]], tasks=None) -> list[str]:
  """Every plot the results allow (`tasks`: task_tables.all_rows, computed when None);
  returns the paths written."""
  from spectralgpt_jax.sweep import task_tables  # pylint: disable=g-import-not-at-top
  out = []
  if tasks is None:
    tasks = task_tables.all_rows(root, results)
  path = plot_task_intervals(tasks, os.path.join(root, "task_intervals.png"))
  if path:
    out.append(path)
  for key, x_of in swept_axes(results).items():
    name = key.replace(".", "_")
    path = plot_metric_vs(results, key, x_of, os.path.join(root, f"metric_vs_{name}.png"))
    if path:
      out.append(path)
  per_l2 = l2_results(results)
  if per_l2:
    path = plot_metric_vs(per_l2, "l2", lambda r: r["overrides"]["l2"],
                          os.path.join(root, "metric_vs_l2.png"))
    if path:
      out.append(path)
  for r in results:
    point = os.path.join(root, r["dir"])
    for name in storage.listdir(point):
      npz = os.path.join(point, name, PREDICTIONS)
      if storage.exists(npz):
        out += plot_predictions(npz)
  return out
