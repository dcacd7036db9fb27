"""Learning-rate schedules of the official recipes, chosen by `config.optim.schedule`.

  warmup_cosine  linear warmup then half-cycle cosine to min_lr (pretraining, classification)
  warmup_poly    SegMunich: factor 1e-3 -> 1 linearly over warmup_steps (torch LambdaLR:
                 warmup_factor * (1 - a) + a, a = step / warmup), then (1 - p) ** 0.9 with
                 p = (step - warmup) / (total - warmup), per step
  exponential    OSCD ExponentialLR: lr * gamma ** floor(step / steps_per_epoch)
  steps          PANGAEA: lr, x0.1 from 60 % and again from 90 % of total_steps
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import jax.numpy as jnp
import optax

# schedule name -> its own config.optim fields (besides lr, min_lr, warmup_steps, total_steps)
# with their defaults.
OWN_FIELDS: dict[str, dict[str, Any]] = {
    "warmup_cosine": {},
    "warmup_poly": {"warmup_factor": 1e-3, "poly_power": 0.9},
    "exponential": {"gamma": None, "steps_per_epoch": None},
    "steps": {"milestones": (0.6, 0.9), "decay_factor": 0.1},
}
SCHEDULES = tuple(OWN_FIELDS)


def warmup_cosine(peak: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0,
                  ) -> optax.Schedule:
  """lr(step): peak * step / warmup for step < warmup, then min_lr + (peak - min_lr) *
  0.5 * (1 + cos(pi * (step - warmup) / (total - warmup))), constant min_lr after total."""

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    warm = peak * step / max(warmup_steps, 1)
    progress = jnp.clip((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0, 1.0)
    cosine = min_lr + (peak - min_lr) * 0.5 * (1.0 + jnp.cos(math.pi * progress))
    return jnp.where(step < warmup_steps, warm, cosine)

  return schedule


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


def _frozen(v: Any) -> Any:
  return tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else v


@dataclasses.dataclass(frozen=True)
class ScheduleSettings:
  """Everything the learning-rate schedule reads: recorded in the checkpoint meta under
  "schedule" so a resumed run can tell when it changed, and `build()` makes the schedule.

  name: one of SCHEDULES; options: its own fields (OWN_FIELDS[name]) as sorted (key, value).
  """

  lr: float
  min_lr: float
  warmup_steps: int
  total_steps: int
  name: str = "warmup_cosine"
  options: tuple[tuple[str, Any], ...] = ()

  @classmethod
  def from_optim(cls, optim_cfg, total_steps: int) -> "ScheduleSettings":
    """From config.optim ({lr, min_lr, warmup_steps, schedule, its own fields}) and the run's
    total steps."""
    if optim_cfg.lr is None or optim_cfg.lr <= 0:
      raise ValueError(f"config.optim.lr must be > 0, got {optim_cfg.lr}")
    name = str(optim_cfg.get("schedule", "warmup_cosine"))
    if name not in OWN_FIELDS:
      raise ValueError(f"config.optim.schedule must be one of {SCHEDULES}, got {name!r}")
    options = []
    for key, default in OWN_FIELDS[name].items():
      value = optim_cfg.get(key, default)
      if value is None:
        raise ValueError(f"config.optim.schedule {name!r} needs config.optim.{key}")
      options.append((key, _frozen(value)))
    return cls(float(optim_cfg.lr), float(optim_cfg.min_lr), int(optim_cfg.warmup_steps),
               int(total_steps), name, tuple(sorted(options)))

  @classmethod
  def from_config(cls, config) -> "ScheduleSettings":
    """From a whole training config (config.optim and config.total_steps)."""
    return cls.from_optim(config.optim, int(config.total_steps))

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ScheduleSettings":
    """From `to_dict()` (meta written before schedules had names: warmup_cosine)."""
    options = tuple(sorted((k, _frozen(v)) for k, v in (d.get("options") or {}).items()))
    return cls(float(d["lr"]), float(d["min_lr"]), int(d["warmup_steps"]),
               int(d["total_steps"]), str(d.get("name", "warmup_cosine")), options)

  def to_dict(self) -> dict[str, Any]:
    return {"lr": self.lr, "min_lr": self.min_lr, "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps, "name": self.name, "options": dict(self.options)}

  def build(self) -> optax.Schedule:
    """The schedule `name` with these settings (module docstring)."""
    o = dict(self.options)
    if self.name == "warmup_cosine":
      return warmup_cosine(self.lr, self.warmup_steps, self.total_steps, self.min_lr)
    if self.name == "warmup_poly":
      return warmup_poly(self.lr, self.warmup_steps, self.total_steps,
                         float(o["warmup_factor"]), float(o["poly_power"]))
    if self.name == "exponential":
      return exponential_per_epoch(self.lr, float(o["gamma"]), int(o["steps_per_epoch"]))
    if self.name == "steps":
      return step_decay(self.lr, self.total_steps, tuple(o["milestones"]),
                        float(o["decay_factor"]))
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.name!r}")

  def lr_at(self, step: int) -> float:
    """The learning rate of update `step` (host float, from `build()`)."""
    return float(self.build()(step))

  def describe(self) -> str:
    shape = {"warmup_cosine": f"cosine to step {self.total_steps} (min_lr {self.min_lr:.4g})",
             "warmup_poly": f"poly to step {self.total_steps}",
             "exponential": "exponential per epoch",
             "steps": f"step decay over {self.total_steps} steps"}[self.name]
    extra = "".join(f", {k} {v}" for k, v in self.options)
    return f"{self.name}: lr {self.lr:.4g}, warmup {self.warmup_steps} steps, {shape}{extra}"
