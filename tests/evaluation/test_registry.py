"""Evaluators are built from their config block by signature: every shipped eval config
builds, an unknown or missing field is a TypeError naming the block."""

import importlib.util
import pathlib

import ml_collections
import pytest

from spectralgpt_jax.evaluation import registry, runner
from spectralgpt_jax.evaluation.context import EvalContext

EVAL_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs" / "eval"
FILES = sorted(p.name for p in EVAL_DIR.glob("*.py") if "def get_config(" in p.read_text())


def _ctx(tmp_path, name):
  return EvalContext(str(tmp_path / name), 0, "", "", "")


@pytest.mark.parametrize("name", FILES)
def test_every_eval_config_builds_its_evaluators(name, tmp_path):
  spec = importlib.util.spec_from_file_location(f"eval_{name[:-3]}", EVAL_DIR / name)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config(None)
  for eval_name, block in config.evals.items():
    evaluator = registry.build(eval_name, block, _ctx(tmp_path, eval_name))
    assert type(evaluator) is registry.get(block.type)


def test_fields_come_from_the_signatures():
  optional, required = registry._fields(registry.get("knn"))
  assert required == ["train_data", "test_data"]
  assert optional["k"] == 20 and optional["pooling"] == "mean" and optional["val_data"] is None
  optional, required = registry._fields(registry.get("dense"))
  assert required == ["train", "test_data"] and optional["tile_batch"] == 32


def test_unknown_field_names_the_block(make_eval_config, tmp_path):
  config = make_eval_config()
  config.evals.nn.temprature = 0.2
  with pytest.raises(TypeError, match=r"config.evals.nn \(type 'knn'\): unknown fields "
                                      r"\['temprature'\]\. KnnEvaluator .* takes: .*temperature"):
    runner.run_evals(config, str(tmp_path))


@pytest.mark.parametrize("kind,block,missing", [
    ("dense", {"train": {}}, "['test_data']"),
    ("finetune", {}, "['train', 'test_data']"),
    ("linear", {"test_data": {}}, "['train_data']")])
def test_missing_fields_name_the_block(kind, block, missing, tmp_path):
  c = ml_collections.ConfigDict({"seed": 0, "pretrained": "", "model": "", "cache_dir": "",
                                 "evals": {"e": {"type": kind, **block}}})
  with pytest.raises(TypeError, match=rf"config.evals.e \(type '{kind}'\): lacks "
                                      + missing.replace("[", r"\[").replace("]", r"\]")):
    runner.run_evals(c, str(tmp_path))


def test_block_without_type(tmp_path):
  c = ml_collections.ConfigDict({"seed": 0, "pretrained": "", "model": "", "cache_dir": "",
                                 "evals": {"e": {"k": 3}}})
  with pytest.raises(ValueError, match=r"config.evals.e has no `type`"):
    runner.run_evals(c, str(tmp_path))
