"""What a resumed run continues with, decided before anything is built or compiled.

`peek(workdir)` reads the latest checkpoint's step and meta (no arrays); `schedule_for_resume`
compares the learning-rate schedule recorded there with the config's and announces a change
(old and new schedule, the lr of the next update under both). By default the config's schedule
applies; `config.checkpoint.keep_schedule=True` keeps the recorded one (the run then goes on to
the new `total_steps` at the recorded schedule, which stays at its min_lr after its own end).
"""

from __future__ import annotations

from typing import Any

from absl import logging

from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train.optim import ScheduleSettings

KEEP_FLAG = "--config.checkpoint.keep_schedule=True"


def peek(workdir: str) -> tuple[int, dict[str, Any]] | None:
  """(latest committed step, its meta) of the run in `workdir`, or None when there is none or
  its meta cannot be read (the restore then deals with it: fallback or a clear error)."""
  step = ckpt.latest_step(workdir)
  if step is None:
    return None
  try:
    return step, ckpt.read_meta(workdir, step)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("could not read the meta of step %d in %s (%s: %s); the restore decides",
                    step, ckpt.checkpoint_dir(workdir), type(e).__name__, str(e)[:200])
    return None


def recorded_schedule(meta: dict[str, Any]) -> ScheduleSettings | None:
  """The schedule a checkpoint was trained with: meta["schedule"], or for checkpoints written
  before it was recorded, the same fields of meta["config"]; None if neither says."""
  if "schedule" in meta:
    return ScheduleSettings.from_dict(meta["schedule"])
  config = meta.get("config") or {}
  optim = config.get("optim") or {}
  try:
    return ScheduleSettings(float(optim["lr"]), float(optim["min_lr"]),
                            int(optim["warmup_steps"]), int(config["total_steps"]))
  except (KeyError, TypeError, ValueError):
    return None


def schedule_for_resume(config, meta: dict[str, Any], step: int) -> ScheduleSettings:
  """The schedule a run resumed at `step` trains with; logs a warning when it differs from the
  recorded one (both schedules and the lr of the next update under each)."""
  new = ScheduleSettings.from_config(config)
  old = recorded_schedule(meta)
  if old is None or old == new:
    return new
  keep = bool(config.checkpoint.get("keep_schedule", False))
  used = old if keep else new
  logging.warning(
      "resuming at step %d with a changed learning-rate schedule:\n"
      "  checkpoint: %s; next lr %.4g\n"
      "  config:     %s; next lr %.4g\n"
      "  training with the %s schedule%s", step, old.describe(), old.lr_at(step),
      new.describe(), new.lr_at(step), "checkpoint's" if keep else "config's",
      " (config.checkpoint.keep_schedule)" if keep else f"; pass {KEEP_FLAG} to keep the "
      "checkpoint's")
  return used
