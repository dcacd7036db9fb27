"""Learning-rate schedules of the official recipes, chosen by `config.optim.schedule`.

  warmup_cosine  linear warmup then half-cycle cosine to min_lr (pretraining, classification)
  warmup_poly    SegMunich: factor 1e-3 -> 1 linearly over warmup_steps (torch LambdaLR:
                 warmup_factor * (1 - a) + a, a = step / warmup), then (1 - p) ** 0.9 with
                 p = (step - warmup) / (total - warmup), per step
  exponential    OSCD ExponentialLR: lr * gamma ** floor(step / steps_per_epoch)
  steps          PANGAEA: lr, x0.1 from 60 % and again from 90 % of total_steps
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import optax

from spectralgpt_jax.train.optim import warmup_cosine

SCHEDULES = ("warmup_cosine", "warmup_poly", "exponential", "steps")


def warmup_poly(peak: float, warmup_steps: int, total_steps: int, warmup_factor: float = 1e-3,
                power: float = 0.9) -> optax.Schedule:
  """SegMunich's per-step LambdaLR (module docstring)."""

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    a = step / max(warmup_steps, 1)
    warm = warmup_factor * (1.0 - a) + a
    p = jnp.clip((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0, 1.0)
    return peak * jnp.where(step < warmup_steps, warm, (1.0 - p) ** power)

  return schedule


def exponential_per_epoch(peak: float, gamma: float, steps_per_epoch: int) -> optax.Schedule:
  """lr * gamma ** (completed epochs), as ExponentialLR stepped after every epoch."""
  if steps_per_epoch < 1:
    raise ValueError(f"config.optim.steps_per_epoch must be >= 1, got {steps_per_epoch}")
  return lambda step: peak * gamma ** jnp.floor(jnp.asarray(step, jnp.float32) / steps_per_epoch)


def step_decay(peak: float, total_steps: int, milestones: tuple[float, ...] = (0.6, 0.9),
               factor: float = 0.1) -> optax.Schedule:
  """lr x factor at each milestone (fraction of total_steps)."""
  bounds = [int(m * total_steps) for m in milestones]
  return lambda step: peak * factor ** sum(
      (jnp.asarray(step) >= b).astype(jnp.float32) for b in bounds)


def from_config(optim_cfg, settings) -> Callable:
  """The schedule `optim_cfg.schedule` names (default warmup_cosine): lr, min_lr, warmup and
  total steps from `settings` (optim.ScheduleSettings), its own fields from `optim_cfg`."""
  name = optim_cfg.get("schedule", "warmup_cosine")
  lr, total_steps = float(settings.lr), int(settings.total_steps)
  if name == "warmup_cosine":
    return warmup_cosine(lr, int(settings.warmup_steps), total_steps, float(settings.min_lr))
  if name == "warmup_poly":
    return warmup_poly(lr, int(settings.warmup_steps), total_steps,
                       float(optim_cfg.get("warmup_factor", 1e-3)),
                       float(optim_cfg.get("poly_power", 0.9)))
  if name == "exponential":
    return exponential_per_epoch(lr, float(optim_cfg.gamma), int(optim_cfg.steps_per_epoch))
  if name == "steps":
    return step_decay(lr, total_steps, tuple(optim_cfg.get("milestones", (0.6, 0.9))),
                      float(optim_cfg.get("decay_factor", 0.1)))
  raise ValueError(f"config.optim.schedule must be one of {SCHEDULES}, got {name!r}")
