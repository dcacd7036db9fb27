"""`sweep` on the real configs and data end to end (tiny_sweep.py: flood tiles + six BigEarthNet
patches, a saved tiny MAE against a random encoder): 4 points, table, plots, skip on rerun,
and a point whose result is lost is run again (its features come from the cache)."""

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
FLOOD = pathlib.Path(os.environ.get("SPECTRALGPT_FLOOD_DATA",
                                    REPO.parent / "shared" / "data" / "sen1floods11_s2_chip"))


@pytest.fixture()
def demo_like(tmp_path, example_dir, fresh_mae):
  """A folder shaped like `make demo`'s: run/ (a saved tiny MAE) and shards/ (the patches)."""
  if not (FLOOD / "SHA256SUMS.txt").exists():
    pytest.skip(f"Sen1Floods11 chip not found at {FLOOD} (set SPECTRALGPT_FLOOD_DATA)")
  absl_flags.ensure_parsed()
  demo = tmp_path / "demo"
  demo.mkdir()
  os.symlink(fresh_mae[0], demo / "run")
  ingest.ingest("bigearthnet", [str(example_dir)], demo / "shards", num_shards=2)
  return demo


@pytest.mark.slow  # the whole tiny sweep (4 points, fine-tunes included): make demo-eval runs it too
def test_tiny_sweep_runs_skips_and_resumes(tmp_path, demo_like, capsys):
  shared = FLOOD.parent.parent
  spec = f"configs/eval/tiny_sweep.py:shared={shared},demo={demo_like},size=32"
  root = tmp_path / "sweep"
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    assert sweep_cli.main(["--config", spec, "--workdir", str(root)]) == 0
    results = points.load_results(str(root))
    assert len(results) == 4 and {r["overrides"]["seed"] for r in results} == {0, 1}
    for r in results:
      assert 0.0 <= r["metrics"]["flood_linear/accuracy"] <= 1.0
      assert "ben_knn/micro_map" in r["metrics"] and r["config"]["evals"]
    assert (root / "results.csv").exists() and (root / "results.md").exists()
    assert (root / "metric_vs_l2.png").read_bytes()[:4] == b"\x89PNG"
    first = root / results[0]["dir"]
    assert (first / "flood_linear" / "per_class.png").exists()
    assert {(first / "flood_linear" / n).exists() for n in ("confusion.png",
                                                             "confusion_matrix.png")} == {True, False}
    capsys.readouterr()
    os.unlink(first / points.RESULT)
    assert sweep_cli.main(["--config", spec, "--workdir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("done (result.json), skipping") == 3
    again = {r["dir"]: r for r in points.load_results(str(root))}[results[0]["dir"]]
    assert again["metrics"] == pytest.approx(results[0]["metrics"], nan_ok=True)
  finally:
    os.chdir(cwd)
