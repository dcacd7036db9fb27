"""Every pretraining config loads with its defaults; the official recipes carry the spec's
hyperparameters; derived fields follow overrides; typos fail."""

import importlib
import pathlib

import pytest

from configs import common

# ml_collections loads config files with the deprecated importlib load_module.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs" / "pretrain"
FILES = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if not p.stem.startswith("_"))
GROUPS = ("model", "kernels", "data", "masking", "loss", "optim", "mesh", "sharding",
          "checkpoint", "init_from", "log")


def _load(name, arg=None):
  return importlib.import_module(f"configs.pretrain.{name}").get_config(arg)


@pytest.mark.parametrize("name", FILES)
def test_every_config_loads_with_defaults(name):
  c = _load(name)
  for group in GROUPS:
    assert group in c, f"{name}: missing config.{group}"
  if c.total_steps is None:  # num_examples unset: from the shard manifest at training time
    assert c.num_examples is None
    c.num_examples = 1000
  assert c.total_steps > c.optim.warmup_steps >= 0
  assert c.data.batch_size == c.batch_size and c.model.img_size == c.data.image_size
  assert c.num_dates == c.model.num_dates == c.data.num_dates == 1
  # Implementation choices are not model fields: the compile target picks them.
  assert "attention" not in c.model and "matmul" not in c.model
  assert (c.kernels.attention, c.kernels.matmul) == ("auto", "auto")
  assert c.optim.lr == pytest.approx(c.optim.blr * c.batch_size / 256)
  mod = importlib.import_module(f"configs.pretrain.{name}")
  assert "python -m spectralgpt_jax train --config configs/pretrain/" in mod.__doc__
  c.to_json()  # serialisable for the checkpoint meta
  c.lock()  # as config_flags(lock_config=True) does
  with pytest.raises(AttributeError):
    c.optim.lrr = 1.0


def test_official_stage_1_and_2_recipes():
  s1, s2 = _load("spectralgpt_base_96"), _load("spectralgpt_plus_base_128")
  assert s1.num_examples == 712_874  # the fMoW-Sentinel recipe names its data
  assert s2.num_examples is None     # stage 2: the user's BigEarthNet shards' manifest
  s2.num_examples = 269_695
  assert (s1.model.name, s1.image_size, s2.model.name, s2.image_size) == (
      "mae_vit_base_patch8_96", 96, "mae_vit_base_patch8_128", 128)
  for c in (s1, s2):
    assert (c.optim.b1, c.optim.b2, c.optim.weight_decay) == (0.9, 0.95, 0.05)
    assert c.masking.ratio == 0.9 and c.batch_size == 4096 and c.optim.min_lr == 0.0
    assert not c.optim.exclude_pos_and_mask and not c.loss.norm_pix
    assert c.optim.clip_grad_norm == 0.0 and c.data.normalization == "minmax"
    assert c.optim.warmup_steps == c.total_steps * 20 // c.epochs
  assert s1.optim.lr == pytest.approx(3.2e-3) and s1.epochs == 200
  assert s2.optim.lr == pytest.approx(1.6e-3) and s2.epochs == 100
  assert s2.init_from.pos_embed == "reinit"
  assert _load("spectralgpt_plus_base_128", "resize").init_from.pos_embed == "resize"
  huge = _load("spectralgpt_huge", "stage=2")
  assert huge.model.name == "mae_vit_huge_patch8_128" and huge.model.remat == "full"


def test_overrides_propagate_to_derived_fields():
  c = _load("spectralgpt_base_96")
  c.total_steps = 1000
  assert c.optim.warmup_steps == 100  # still 20 of 200 epochs
  c.batch_size = 1024
  assert c.optim.lr == pytest.approx(2e-4 * 1024 / 256) and c.data.batch_size == 1024
  c.image_size = 64
  assert c.model.img_size == 64 and c.data.image_size == 64
  c.num_dates = 3
  assert c.model.num_dates == 3 and c.data.num_dates == 3


def test_tiny_time_series_config():
  c = _load("tiny_s2")
  assert c.num_dates == 1 and c.data.source == "tfrecord"
  assert _load("tiny_s2", "synthetic").data.source == "synthetic"
  c = _load("tiny_s2", "dates=2")
  assert (c.num_dates, c.model.num_dates, c.data.num_dates) == (2, 2, 2)
  assert c.data.source == "synthetic"   # no multi-date data ships; override source + paths


def test_parse_arg():
  a = common.parse_arg("stage=2,resize", stage=1, resize=False)
  assert a.stage == 2 and a.resize is True
  with pytest.raises(ValueError, match="unknown"):
    common.parse_arg("stgae=2", stage=1)


def test_cli_rejects_typo_and_missing_flags(capsys):
  from spectralgpt_jax.cli import train
  assert train.main(["--config", str(CONFIG_DIR / "tiny_s2.py")]) == 2
  assert train.main(["--config", str(CONFIG_DIR / "tiny_s2.py"), "--workdir", "/tmp/x",
                     "--config.optim.lrr=1"]) == 2
  assert "lrr" in capsys.readouterr().err
