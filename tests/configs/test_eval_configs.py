"""The evaluation configs: every one loads, carries the spec's recipe, and its sweep expands
into distinct points whose overrides apply to the locked config."""

import importlib.util
import os
import pathlib

import pytest

from spectralgpt_jax.sweep import points

REPO = pathlib.Path(__file__).resolve().parents[2]
EVAL_DIR = REPO / "configs" / "eval"
# Experiment configs (modules with get_config); helpers such as dense_common.py are not.
FILES = sorted(p.name for p in EVAL_DIR.glob("*.py") if "def get_config(" in p.read_text())
TRAINED = ("finetune", "dense")  # evaluators that carry a whole training config


def _module(name):
  spec = importlib.util.spec_from_file_location(f"eval_{name[:-3]}", EVAL_DIR / name)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


@pytest.mark.parametrize("name", FILES)
def test_loads_and_sweep_points_apply(name):
  mod = _module(name)
  c = mod.get_config(None)
  assert {"seed", "pretrained", "model", "cache_dir", "evals"} <= set(c)
  assert "python -m spectralgpt_jax " in mod.__doc__
  for e in c.evals.values():
    assert e.type in ("linear", "knn", "change_probe") + TRAINED
    if e.type == "change_probe":  # reads whole OSCD cities itself (evaluation/change_probe.py)
      assert e.root and e.train_cities and e.test_cities
      continue
    for split in ("train_data", "test_data") if e.type not in TRAINED else ("test_data",):
      d = e[split]
      assert d.label_type in ("single", "multi") and not d.train and d.num_epochs == 1
      assert not d.drop_remainder
    if e.type == "finetune":  # a whole training config; its data is the training split
      assert e.train.data.train and e.train.model.name.startswith("vit_")
      assert e.train.data.label_type == e.test_data.label_type
    if e.type == "dense":  # per-pixel labels; change detection reads both dates
      assert e.train.data.train and e.train.model.name.startswith(("seg_", "cd_"))
      assert e.test_data.use_mask and e.train.data.use_mask
      assert e.test_data.use_cube2 == e.train.model.name.startswith("cd_")
  c.to_json()
  sweep = mod.get_sweep(None) if hasattr(mod, "get_sweep") else [{}]
  assert len({points.slug(o) for o in sweep}) == len(sweep)
  for o in sweep:
    c = mod.get_config(None)
    c.lock()
    c.update_from_flattened_dict(o)


def test_recipes():
  eu = _module("eurosat_linear.py").get_config("protocol=both")
  assert sorted(eu.evals) == ["eurosat_knn", "eurosat_linear"]
  d = eu.evals.eurosat_linear.test_data
  assert (d.normalization, d.stats, d.bands, d.num_classes) == (
      "zscore", "eurosat_official", "spectralgpt", 10)
  assert int(d.image_size / d.eval_crop_pct) == 146
  eu.data_root, eu.train_split = "/data/eu", "/lists/train.txt"
  assert eu.evals.eurosat_knn.train_data.paths == "/data/eu"
  assert eu.evals.eurosat_knn.train_data.split_file == "/lists/train.txt"
  drop = _module("eurosat_linear.py").get_config("official_bands,source=tfds")
  assert drop.evals.eurosat_linear.train_data.bands == "eurosat_official_drop10"
  assert drop.evals.eurosat_linear.train_data.tfds.name == "eurosat/all"
  ben = _module("bigearthnet_linear.py").get_config("classes=43,source=tfds")
  b = ben.evals.ben43_linear.train_data
  assert (b.label_type, b.num_classes, b.tfds.nomenclature, b.normalization) == (
      "multi", 43, "bigearthnet43", "sentinel_clip")
  with pytest.raises(ValueError):
    _module("bigearthnet_linear.py").get_config("classes=20")


def test_tiny_and_checkpoint_sweeps():
  tiny = _module("tiny_sweep.py")
  assert len(tiny.get_sweep(None)) == 9
  # the demo encoder and both reference rows (random init, per-band statistics)
  assert {o["pretrained"] for o in tiny.get_sweep(None)} == {"runs/demo/run", "", "band_stats"}
  c = tiny.get_config("demo=/d")
  assert sorted(c.evals) == ["eurosat_knn", "eurosat_linear"]
  for split in ("train", "test"):
    d = c.evals.eurosat_linear[f"{split}_data"]
    assert (d.paths, d.label_type, d.num_classes) == (f"/d/eurosat_{split}", "single", 10)
    assert os.path.exists(d.split_file) and d.split_file.endswith(f"eurosat_subset_{split}.txt")
  assert tuple(c.evals.eurosat_linear.l2_strengths) == (1e-2,)   # nothing selected on test
  cd = _module("tiny_oscd_sweep.py")
  assert cd.get_sweep("demo=/d") == [{"pretrained": "/d/run", "seed": 0},
                                     {"pretrained": "", "seed": 0}]
  o = cd.get_config("demo=/d,steps=7")
  assert o.pretrained == "/d/run" and o.evals.oscd.train.total_steps == 7
  assert o.evals.oscd.test_data.oscd.cities == "rennes,hongkong"
  ck = _module("checkpoint_sweep.py")
  pts = ck.get_sweep("steps=100+300,seeds=0+1")
  assert [points.checkpoint_step(o["pretrained"]) for o in pts] == [100, 100, 300, 300]
  assert sorted(ck.get_config("protocol=knn").evals) == ["flood_knn"]
