"""Resuming is honest: the schedule is recorded in the checkpoint meta, a changed schedule is
announced (old and new, with the next lr under each) and can be kept, and a finished run
returns once its checkpoint is verified, before anything is compiled (and, with an evaluation,
is evaluated once)."""

import logging
import shutil

import jax
import numpy as np
import pytest

import train_util
from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train import loop, optim, resume


@pytest.fixture()
def absl_records(caplog):
  caplog.set_level(logging.INFO, logger="absl")
  return caplog


def _messages(caplog) -> str:
  text = "\n".join(r.getMessage() for r in caplog.records)
  caplog.clear()
  return text


@pytest.mark.slow  # three CLI trainings (~25 s)
def test_changed_schedule_is_announced_kept_on_request_and_finished_runs_exit_early(
    tmp_path, absl_records):
  first, second = str(tmp_path / "a"), str(tmp_path / "b")
  loop.train(train_util.tiny(total_steps=4), first)
  recorded = ckpt.read_meta(first)["schedule"]
  assert recorded["total_steps"] == 4 and recorded["lr"] > 0
  shutil.copytree(first, second)
  _messages(absl_records)

  # Default: the config's (new) schedule, announced with both schedules and their next lr.
  last_new = loop.train(train_util.tiny(total_steps=6), first)
  log = _messages(absl_records)
  assert "changed learning-rate schedule" in log, log
  assert "cosine to step 4" in log and "cosine to step 6" in log
  assert "training with the config's schedule" in log and resume.KEEP_FLAG in log
  assert ckpt.read_meta(first)["schedule"]["total_steps"] == 6

  # keep_schedule: the checkpoint's schedule goes on (past its end: min_lr = 0).
  kept = train_util.tiny(total_steps=6, **{"checkpoint.keep_schedule": True})
  last_kept = loop.train(kept, second)
  log = _messages(absl_records)
  assert "training with the checkpoint's schedule" in log, log
  assert ckpt.read_meta(second)["schedule"]["total_steps"] == 4
  assert last_kept["lr"] == 0.0 < last_new["lr"]

  # Already at total_steps: restored and verified, then one line; nothing compiled.
  assert loop.train(train_util.tiny(total_steps=6), first) == {"step": 6}
  log = _messages(absl_records)
  assert "already at step 6 of config.total_steps 6" in log, log
  assert "compiled" not in log and "changed learning-rate schedule" not in log

  # With an evaluation: the finished run's last state is evaluated once, still not compiled.
  seen = []

  def evaluate(program, state, step):
    seen.append(step)
    return {"param_sum": float(sum(np.sum(x) for x in jax.tree.leaves(state.params)))}

  last = loop.train(train_util.tiny(total_steps=6), first, evaluate=evaluate)
  params = ckpt.load_params(first, 6)
  want = float(sum(np.sum(x) for x in jax.tree.leaves(jax.device_get(params))))
  assert seen == [6] and last["step"] == 6
  assert last["eval/param_sum"] == pytest.approx(want, rel=1e-6)
  assert "compiled" not in _messages(absl_records)


def test_recorded_schedule_of_older_checkpoints_comes_from_their_config():
  config = train_util.tiny(total_steps=10)
  meta = {"config": config.to_dict()}
  assert resume.recorded_schedule(meta) == optim.ScheduleSettings.from_config(config)
  assert resume.recorded_schedule({"config": {}}) is None


def test_schedule_settings_lr_matches_the_optax_schedule():
  s = optim.ScheduleSettings(lr=1e-3, min_lr=1e-5, warmup_steps=3, total_steps=10)
  f = optim.warmup_cosine(1e-3, 3, 10, 1e-5)
  for step in (0, 2, 3, 7, 10, 12):
    assert s.lr_at(step) == pytest.approx(float(f(step)))
  assert optim.ScheduleSettings.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("name,fields", [
    ("warmup_poly", {"warmup_factor": 1e-3, "poly_power": 0.9}),
    ("exponential", {"gamma": 0.95, "steps_per_epoch": 4}),
    ("steps", {"milestones": (0.6, 0.9), "decay_factor": 0.1}),
])
def test_recorded_schedules_of_every_recipe_say_the_lr_they_train_with(name, fields):
  """The dense recipes' schedules survive the meta (JSON) and the resume message's lr is the
  one the optimizer uses, not warmup_cosine's."""
  import json
  import ml_collections
  cfg = ml_collections.ConfigDict(dict(lr=1e-3, min_lr=0.0, warmup_steps=3, schedule=name,
                                       b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
                                       exclude_pos_and_mask=False, clip_grad_norm=0.0, **fields))
  s = optim.ScheduleSettings.from_optim(cfg, 20)
  _, schedule = optim.make_optimizer(cfg, 20)
  for step in (0, 2, 5, 12, 18):
    assert s.lr_at(step) == pytest.approx(float(schedule(step)))
  assert optim.ScheduleSettings.from_dict(json.loads(json.dumps(s.to_dict()))) == s
  assert name in s.describe()
  cosine = optim.ScheduleSettings(1e-3, 0.0, 3, 20)
  assert cosine != s and cosine.lr_at(12) != pytest.approx(s.lr_at(12))
