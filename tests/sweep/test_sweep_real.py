"""`sweep` on the real configs and data end to end (tiny_sweep.py: the EuroSAT-MS subset, a saved
tiny MAE against a random encoder and per-band statistics): 9 points, per-task tables with
intervals, plots, skip on rerun, and a point whose result is lost is run again (its features
come from the cache)."""

import os
import pathlib

import pytest

pytest.importorskip("spectralgpt_jax.evaluation.runner")
pytest.importorskip("rasterio")
pytest.importorskip("matplotlib")

from data_pipelines import absl_flags, ingest  # noqa: E402
from spectralgpt_jax.cli import sweep as sweep_cli  # noqa: E402
from spectralgpt_jax.sweep import points  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
EUROSAT = pathlib.Path(os.environ.get("SPECTRALGPT_EUROSAT_DATA",
                                      REPO.parent / "shared" / "data" / "eurosat_ms_subset"))
SPLITS = REPO / "configs" / "eval" / "splits"


@pytest.fixture()
def demo_like(tmp_path, fresh_mae):
  """A folder shaped like `make demo`'s: run/ (a saved tiny MAE), eurosat_train/ and
  eurosat_test/ (the split's shards)."""
  if not (EUROSAT / "SHA256SUMS.txt").exists():
    pytest.skip(f"EuroSAT-MS subset not found at {EUROSAT} (set SPECTRALGPT_EUROSAT_DATA)")
  absl_flags.ensure_parsed()
  demo = tmp_path / "demo"
  demo.mkdir()
  os.symlink(fresh_mae[0], demo / "run")
  for split in ("train", "test"):
    ingest.ingest("eurosat", [str(EUROSAT)], demo / f"eurosat_{split}", num_shards=2,
                  split_file=str(SPLITS / f"eurosat_subset_{split}.txt"))
  return demo


@pytest.mark.slow  # the whole tiny sweep (9 points): make demo-eval runs it too
def test_tiny_sweep_runs_skips_and_resumes(tmp_path, demo_like, capsys):
  spec = f"configs/eval/tiny_sweep.py:demo={demo_like},size=32"
  root = tmp_path / "sweep"
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    assert sweep_cli.main(["--config", spec, "--workdir", str(root)]) == 0
    results = points.load_results(str(root))
    assert len(results) == 9 and {r["overrides"]["seed"] for r in results} == {0, 1, 2}
    for r in results:
      assert 0.0 <= r["metrics"]["eurosat_linear/accuracy"] <= 1.0
      assert r["metrics"]["eurosat_knn/num_examples"] == 60 and r["config"]["evals"]
    md = (root / "results.md").read_text()
    for row in ("| random-init encoder | 3 | 60 |", "| per-band statistics (mean, std) | 3 | 60 |",
                f"| {demo_like}/run | 3 | 60 |"):
      assert md.count(row) == 2, md   # one row in each task's table (linear, k-NN)
    assert (root / "task_intervals.png").read_bytes()[:4] == b"\x89PNG"
    first = root / results[0]["dir"]
    assert (first / "eurosat_linear" / "per_class.png").exists()
    capsys.readouterr()
    os.unlink(first / points.RESULT)
    assert sweep_cli.main(["--config", spec, "--workdir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("done (result.json), skipping") == 8
    again = {r["dir"]: r for r in points.load_results(str(root))}[results[0]["dir"]]
    assert again["metrics"] == pytest.approx(results[0]["metrics"], nan_ok=True)
  finally:
    os.chdir(cwd)
