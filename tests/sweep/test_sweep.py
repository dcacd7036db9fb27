"""Sweep helpers, point slugs, skip-on-rerun, the results table and the plots (written from
result.json and predictions.npz files made here; the evaluation core is not needed)."""

import json
import math
import os
import pathlib
import textwrap

import numpy as np
import pytest

from configs.sweeps import product, sweep, zipit
from spectralgpt_jax.cli import sweep as sweep_cli
from spectralgpt_jax.sweep import plots, points, table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_sweep_product_zipit():
  assert sweep("a.b", [1, 2]) == [{"a.b": 1}, {"a.b": 2}]
  assert product(sweep("x", [1, 2]), sweep("y", ["u", "v"])) == [
      {"x": 1, "y": "u"}, {"x": 1, "y": "v"}, {"x": 2, "y": "u"}, {"x": 2, "y": "v"}]
  assert zipit(sweep("x", [1, 2]), sweep("y", [3, 4])) == [{"x": 1, "y": 3}, {"x": 2, "y": 4}]
  assert product(zipit(sweep("x", [1, 2]), sweep("y", [3, 4])), sweep("s", [0])) == [
      {"x": 1, "y": 3, "s": 0}, {"x": 2, "y": 4, "s": 0}]
  with pytest.raises(ValueError):
    zipit(sweep("x", [1, 2]), sweep("y", [3]))
  with pytest.raises(ValueError):
    product(sweep("x", [1]), sweep("x", [2]))


def test_slugs_readable_unique_and_stable():
  a = points.slug({"optim.lr": 3e-4, "pretrained": "runs/demo/run"})
  assert a.startswith("lr=0.0003,pretrained=demo-run-") and len(a.rsplit("-", 1)[1]) == 8
  assert a == points.slug({"optim.lr": 3e-4, "pretrained": "runs/demo/run"})
  # same readable text, different values: the hash tells them apart
  assert points.slug({"a.k": 1}) != points.slug({"b.k": 1})
  assert points.slug({"pretrained": ""}).startswith("pretrained=none-")
  assert points.slug({}).startswith("base-")
  assert all(c not in points.slug({"p": "a b/c:d"}) for c in " /:")
  assert points.checkpoint_step("runs/x/run/checkpoints/300") == 300
  assert points.checkpoint_step("runs/x/run/checkpoints/300/") == 300
  assert points.checkpoint_step("w/ckpt_1200.pth") == 1200
  assert points.checkpoint_step("runs/demo/run") is None and points.checkpoint_step("") is None


def _result(root, overrides, seed, metrics):
  d = root / points.slug(overrides)
  points.atomic_write_json(str(d / points.RESULT), {
      "config": {}, "overrides": overrides, "seed": seed, "metrics": metrics})
  return d


def test_table_mean_std_over_seeds(tmp_path):
  for seed, acc in ((0, 0.5), (1, 0.7)):
    _result(tmp_path, {"pretrained": "a", "seed": seed}, seed, {"e/accuracy": acc, "e/f1": 1.0})
  _result(tmp_path, {"pretrained": "", "seed": 0}, 0, {"e/accuracy": 0.25, "e/f1": math.nan})
  res = points.load_results(str(tmp_path))
  agg = {g["overrides"]["pretrained"]: g for g in table.aggregate(res)}
  mean, std, n = agg["a"]["metrics"]["e/accuracy"]
  assert (n, agg["a"]["n"]) == (2, 2) and mean == pytest.approx(0.6)
  assert std == pytest.approx(np.std([0.5, 0.7], ddof=1))
  assert agg[""]["metrics"]["e/accuracy"] == (0.25, 0.0, 1)
  assert agg[""]["metrics"]["e/f1"][2] == 0   # NaN values are not averaged in
  csv_path, _, md_path = table.write_tables(str(tmp_path), res)
  lines = pathlib.Path(csv_path).read_text().splitlines()
  assert lines[0] == "point,pretrained,seed,e/accuracy,e/f1" and len(lines) == 4
  md = pathlib.Path(md_path).read_text()
  assert "0.6 ± 0.14" in md and "| none | 1 | 0.25 ± 0 | nan |" in md
  assert table.metric_keys([{"metrics": {"e/acc": 1, "e/l2=1/acc": 1, "e/per_class/0": 1,
                                         "e/num_examples": 4}}], headline=True) == ["e/acc"]


def _write_predictions(folder, rng, multi=False):
  os.makedirs(folder, exist_ok=True)
  if multi:
    labels = (rng.random((8, 5)) < 0.4).astype(np.float32)
    labels[:, 4] = 0
  else:
    labels = rng.integers(0, 3, 12)
  scores = rng.random((len(labels), 5 if multi else 3)).astype(np.float32)
  np.savez(os.path.join(folder, "predictions.npz"), ids=np.arange(len(labels)).astype(str),
           labels=labels, scores=scores, label_type="multi" if multi else "single")


def test_plots_are_valid_pngs(tmp_path):
  rng = np.random.default_rng(0)
  for lr in (1e-4, 1e-3, 1e-2):
    for seed in (0, 1):
      for step in (100, 300):
        d = _result(tmp_path, {"pretrained": f"runs/r/checkpoints/{step}", "lr": lr,
                               "seed": seed}, seed,
                    {"lin/acc": rng.random(), "knn/acc": 0.5, "lin/l2=0.01/acc": 0.4,
                     "lin/l2=1/acc": 0.6, "lin/l2=1/val_acc": 0.6, "lin/per_class/0": 1.0})
  _write_predictions(d / "lin", rng)
  _write_predictions(d / "ben", rng, multi=True)
  pngs = plots.write_plots(str(tmp_path), points.load_results(str(tmp_path)))
  names = sorted(os.path.relpath(p, tmp_path) for p in pngs)
  assert names == sorted(["metric_vs_lr.png", "metric_vs_step.png", "metric_vs_l2.png",
                          "task_intervals.png",  # tasks without an interval: std over seeds
                          f"{d.name}/lin/per_class.png", f"{d.name}/lin/confusion_matrix.png",
                          f"{d.name}/ben/per_class.png"])
  for p in pngs:
    data = pathlib.Path(p).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    from PIL import Image
    with Image.open(p) as im:
      im.verify()


def test_sweep_cli_expands_skips_finished_points_and_reports(tmp_path, capsys):
  cfg = tmp_path / "cfg.py"
  cfg.write_text(textwrap.dedent("""
      import ml_collections
      from configs.sweeps import product, sweep
      def get_config(arg=None):
        return ml_collections.ConfigDict({"seed": 0, "pretrained": "", "evals": {}})
      def get_sweep(arg=None):
        return product(sweep("pretrained", ["runs/demo/run", ""]), sweep("seed", [0, 1]))
  """))
  root = tmp_path / "sw"
  assert sweep_cli.main(["--config", str(cfg), "--workdir", str(root), "--print_only"]) == 0
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 4 and all(" evaluate --config " in x for x in lines)
  assert "--config.pretrained=runs/demo/run --config.seed=0" in lines[0]
  assert "--config.pretrained= --config.seed=1" in lines[3] and not root.exists()
  for o in sweep_cli.expand(str(cfg))[1]:   # every point finished: nothing may run
    _result(root, o, o["seed"], {"e/acc": 0.5 + 0.1 * o["seed"]})
  assert sweep_cli.main(["--config", str(cfg), "--workdir", str(root)]) == 0
  out = capsys.readouterr().out
  assert out.count("done (result.json), skipping") == 4
  assert (root / "results.csv").exists() and "## e (other)" in out
  assert "Mean ± std over seeds" in (root / "results_all.md").read_text()
