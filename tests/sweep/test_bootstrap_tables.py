"""Bootstrap intervals (sweep/bootstrap.py) against direct NumPy and binomial computations, and
the per-task tables (sweep/task_tables.py) with their reference rows, from result.json and
predictions.npz files written here."""

import os

import numpy as np
import pytest
from sklearn.metrics import f1_score
from scipy import stats

from spectralgpt_jax.sweep import bootstrap, plots, points, table, task_tables


def test_bootstrap_matches_direct_numpy():
  rng = np.random.default_rng(3)
  correct = (rng.random(60) < 0.7).astype(np.float64)
  est, lo, hi = bootstrap.bootstrap_ci(np.mean, correct, n_resamples=500, seed=11)
  idx = np.random.default_rng(11).integers(0, 60, size=(500, 60))
  direct = correct[idx].mean(axis=1)
  assert est == pytest.approx(correct.mean())
  assert (lo, hi) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])))
  # the same seed draws the same resamples, another seed others
  assert bootstrap.bootstrap_ci(np.mean, correct, n_resamples=500, seed=11) == (est, lo, hi)
  assert (bootstrap.resample_indices(60, 500, 12) != idx).any()
  # a vector statistic: each entry's interval from the same resamples
  two = lambda x: np.array([x.mean(), np.median(x)])
  est2, lo2, hi2 = bootstrap.bootstrap_ci(two, correct, n_resamples=500, seed=11)
  assert est2[0] == est and (lo2[0], hi2[0]) == (lo, hi)
  med = np.median(correct[idx], axis=1)
  assert (lo2[1], hi2[1]) == pytest.approx(tuple(np.percentile(med, [2.5, 97.5])))


def test_bootstrap_of_a_proportion_follows_the_binomial():
  """The bootstrap distribution of a mean of N 0/1 values is Binomial(N, p) / N."""
  n, k = 60, 42
  correct = np.r_[np.ones(k), np.zeros(n - k)]
  _, lo, hi = bootstrap.bootstrap_ci(np.mean, correct, n_resamples=20000, seed=0)
  want_lo, want_hi = stats.binom.ppf([0.025, 0.975], n, k / n) / n
  assert lo == pytest.approx(want_lo, abs=1.5 / n) and hi == pytest.approx(want_hi, abs=1.5 / n)


def test_bootstrap_resamples_arrays_together_and_refuses_bad_input():
  labels = np.array([0, 1, 2, 1])
  scores = np.eye(3)[labels]                      # always right: every resample scores 1
  acc = lambda y, s: float((s.argmax(1) == y).mean())
  assert bootstrap.bootstrap_ci(acc, labels, scores, n_resamples=50) == (1.0, 1.0, 1.0)
  with pytest.raises(ValueError, match="differ in length"):
    bootstrap.bootstrap_ci(acc, labels, scores[:3])
  with pytest.raises(ValueError):
    bootstrap.bootstrap_ci(np.mean, np.array([]))


ROWS = {"runs/demo/run": 0.8, "": 0.3, "band_stats": 0.6}   # pretrained -> accuracy on test


def _sweep(root, seeds=(0, 1)):
  """Points like tiny_sweep.py's: 3 rows x seeds, single-label predictions of 30 examples."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 30)
  ids = np.array([f"x{i:02d}" for i in range(30)])
  for pre, p_right in ROWS.items():
    for seed in seeds:
      right = rng.random(30) < p_right
      pred = np.where(right, labels, (labels + 1) % 4)
      scores = np.eye(4, dtype=np.float32)[pred] + 0.01 * rng.random((30, 4)).astype(np.float32)
      acc = float((scores.argmax(1) == labels).mean())
      f1 = float(f1_score(labels, scores.argmax(1), average="macro"))   # what the probe reports
      overrides = {"pretrained": pre, "seed": seed}
      d = root / points.slug(overrides)
      os.makedirs(d / "es_linear")
      np.savez(d / "es_linear" / "predictions.npz", ids=ids, labels=labels, scores=scores,
               label_type="single")
      points.atomic_write_json(str(d / points.RESULT), {
          "config": {}, "overrides": overrides, "seed": seed,
          "metrics": {"es_linear/accuracy": acc, "es_linear/macro_f1": f1,
                      "es_linear/num_examples": 30.0, "es_linear/per_class_accuracy/0": 1.0}})
  return labels


def test_task_table_rows_intervals_and_references(tmp_path):
  labels = _sweep(tmp_path)
  results = points.load_results(str(tmp_path))
  rows = {r["name"]: r for r in task_tables.task_rows(str(tmp_path), results, "es_linear")}
  assert set(rows) == {"runs/demo/run", "random-init encoder", "per-band statistics (mean, std)"}
  assert all(r["kind"] == "single" and r["seeds"] == 2 and r["n_test"] == 30
             for r in rows.values())
  # direct computation of the seed-averaged accuracy's interval of one row
  demo = [r for r in results if r["overrides"]["pretrained"] == "runs/demo/run"]
  preds = [np.load(tmp_path / r["dir"] / "es_linear" / "predictions.npz")["scores"]
           for r in demo]
  idx = np.random.default_rng(0).integers(0, 30, size=(bootstrap.N_RESAMPLES, 30))
  per_resample = np.mean([(p[idx].argmax(-1) == labels[idx]).mean(1) for p in preds], axis=0)
  mean, std, lo, hi = rows["runs/demo/run"]["cells"]["accuracy"]
  accs = [r["metrics"]["es_linear/accuracy"] for r in demo]
  assert mean == pytest.approx(np.mean(accs)) and std == pytest.approx(np.std(accs, ddof=1))
  assert (lo, hi) == pytest.approx(tuple(np.percentile(per_resample, [2.5, 97.5])))
  assert lo <= mean <= hi


def test_results_md_has_one_small_table_per_task_and_the_interval_plot(tmp_path):
  _sweep(tmp_path)
  results = points.load_results(str(tmp_path))
  tasks = task_tables.all_rows(str(tmp_path), results)
  _, md_path, all_path = table.write_tables(str(tmp_path), results, tasks)
  md = open(md_path).read()
  assert md.count("## ") == 1 and "## es_linear (single)" in md
  header = [line for line in md.splitlines() if line.startswith("| encoder")][0]
  assert header == "| encoder | seeds | test examples | accuracy | macro_f1 |"
  assert "| random-init encoder | 2 | 30 | " in md and "per-band statistics" in md
  assert "per_class" not in md and "num_examples" not in md
  assert "Mean ± std over seeds" in open(all_path).read()
  pngs = plots.write_plots(str(tmp_path), results, tasks)
  png = str(tmp_path / "task_intervals.png")
  assert png in pngs and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_task_kinds_from_metric_names():
  res = [{"metrics": {"a/accuracy": 1, "b/macro_map": 1, "c/miou": 1, "d/f1": 1, "d/iou": 1}}]
  kinds = {n: task_tables.task_kind(n, res) for n in task_tables.eval_names(res)}
  assert kinds == {"a": ("single", ("accuracy", "macro_f1")),
                   "b": ("multi", ("macro_map", "micro_map")),
                   "c": ("segmentation", ("miou",)), "d": ("change", ("f1", "iou"))}


def test_predictions_that_do_not_reproduce_the_reported_metric_are_refused(tmp_path):
  _sweep(tmp_path)
  results = points.load_results(str(tmp_path))
  stale = results[0]
  stale["metrics"]["es_linear/accuracy"] += 0.1     # metrics.json and predictions.npz disagree
  points.atomic_write_json(str(tmp_path / stale["dir"] / points.RESULT), stale)
  with pytest.raises(ValueError, match="recomputed from predictions.npz"):
    task_tables.task_rows(str(tmp_path), points.load_results(str(tmp_path)), "es_linear")
