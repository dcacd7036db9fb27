"""`type="finetune"`: the official fine-tuning recipe through the evaluation room."""

import json

import ml_collections
import numpy as np
import pytest

from configs.finetune import tiny_bigearthnet
from data_pipelines import absl_flags
from spectralgpt_jax.evaluation import registry, runner

from eval_recompute import check_predictions_file


def _config(ben_dir, pretrained, steps=4):
  train = tiny_bigearthnet.get_config(f"steps={steps}")
  train.data.paths = ben_dir
  train.eval_every_steps = 2
  test = ml_collections.ConfigDict(train.data.to_dict())
  test.batch_size = 4
  c = ml_collections.ConfigDict()
  c.seed, c.pretrained, c.model, c.cache_dir = 0, str(pretrained), "", ""
  c.evals = ml_collections.ConfigDict({"ft": {"type": "finetune", "train": train,
                                              "test_data": test}})
  return c


def test_finetune_evaluator_trains_scores_and_resumes(ben_dir, trained_mae, tmp_path):
  absl_flags.ensure_parsed()
  assert registry.get("finetune").__name__ == "FinetuneEvaluator"
  config = _config(ben_dir, trained_mae[0])
  metrics = runner.run_evals(config, str(tmp_path / "point"))
  out = tmp_path / "point" / "ft"
  saved = json.loads((out / "metrics.json").read_text())
  assert saved["info"]["step"] == 4
  pred = np.load(out / "predictions.npz")
  assert pred["scores"].shape == (6, 19) and len(set(pred["ids"])) == 6
  assert list(pred["ids"]) == sorted(pred["ids"])   # example-id order, whatever the readers
  # The saved probabilities reproduce every reported metric (ours and scikit-learn's).
  check_predictions_file(out / "predictions.npz",
                         {k[len("ft/"):]: v for k, v in metrics.items()})
  assert saved["metrics"] == pytest.approx({k[len("ft/"):]: v for k, v in metrics.items()},
                                           nan_ok=True)
  assert (out / "predictions_step2.npz").is_file()  # the hook ran mid-way too
  # A rerun finds the finished run (no training) and scores the same parameters again.
  again = runner.run_evals(config, str(tmp_path / "point"))
  assert again["ft/macro_map"] == metrics["ft/macro_map"]
