"""The periodic work of the training loop: one rule for "is it time", and the actions it times.

After each step the loop asks every action `due(step, total, stopping)` and calls
`run(step, state, batch, metrics)` on those that are. Each action has `every` (steps) and
`last` (also after the final step); `itstime` is the one rule deciding for all of them
(big_vision's utils.itstime idea). A requested stop (preemption) makes the actions marked
`on_stop` due too (the checkpoint).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
from absl import logging
from data_pipelines import storage

from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train import metrics as metrics_lib, panels


def itstime(step: int, every: int, total: int, *, first: bool = False,
            last: bool = True) -> bool:
  """Whether periodic work runs after optimizer step `step` (1-based) of a `total`-step run:
  at every multiple of `every` (0 or less: none), after step 1 if `first`, and after step
  `total` if `last`."""
  return bool((every > 0 and step % every == 0) or (first and step == 1)
              or (last and step == total))


class TrainingDiverged(RuntimeError):
  """Too many consecutive non-finite steps; a checkpoint was written before raising."""


@dataclasses.dataclass(frozen=True)
class RunFiles:
  """Where a run writes. mngr: the checkpoint manager (state with `data_iter` and `meta`);
  writer: TensorBoard; lead: this is process 0 (the only one writing other files)."""

  workdir: str
  mngr: Any
  data_iter: Any
  meta: dict[str, Any]
  writer: metrics_lib.Writer
  lead: bool


class Action:
  """Periodic work: due after step s when `itstime(s, every, total, first=, last=)`."""

  every: int = 1
  first: bool = False
  last: bool = True
  on_stop: bool = False  # also due at the step a stop was requested at

  def due(self, step: int, total: int, stopping: bool = False) -> bool:
    return (stopping and self.on_stop) or itstime(step, self.every, total, first=self.first,
                                                  last=self.last)

  def run(self, step: int, state, batch: dict[str, jax.Array], metrics) -> None:
    raise NotImplementedError


class SaveCheckpoint(Action):
  """State, data iterator and meta every `every` steps, after the last and at a stop."""

  on_stop = True

  def __init__(self, files: RunFiles, every: int):
    self.files, self.every = files, every

  def run(self, step, state, batch, metrics) -> None:
    f = self.files
    ckpt.save(f.mngr, step, state, f.data_iter, f.meta, force=True)

  def save_now(self, state) -> None:
    """A checkpoint of `state` at its own step, written before returning."""
    f = self.files
    ckpt.save(f.mngr, int(jax.device_get(state.step)), state, f.data_iter, f.meta, force=True)
    f.mngr.wait_until_finished()


class Report(Action):
  """Step metrics one step behind (the host never waits for the step just dispatched): logged
  and written every `log_every` steps and after the last; a run with `max_streak` non-finite
  steps in a row is checkpointed and stopped (TrainingDiverged). `latest`: the last metrics."""

  def __init__(self, config, files: RunFiles, meter: metrics_lib.Throughput,
               checkpoints: SaveCheckpoint, start: int):
    self.files, self.meter, self.checkpoints = files, meter, checkpoints
    self.total, self.log_every = int(config.total_steps), int(config.log.every_steps)
    self.max_streak = config.max_nonfinite_streak
    self.latest: dict[str, float] = {"step": start}
    self._pending = None

  def run(self, step, state, batch, metrics) -> None:
    self.flush(state)
    self._pending = (step, metrics)

  def flush(self, state) -> None:
    """Reports the pending step's metrics (`state`: the newest, saved if the run diverged)."""
    if self._pending is None:
      return
    (step, metrics), self._pending = self._pending, None
    m = {k: float(v) for k, v in jax.device_get(metrics).items()}
    self.latest = {**m, "step": step}
    self._check_finite(step, m, state)
    if itstime(step, self.log_every, self.total):
      m.update(self.meter.measure(step))
      eta = (self.total - step) / m["steps_per_sec"] if "steps_per_sec" in m else None
      metrics_lib.log_line(metrics_lib.progress_line(step, self.total, m, eta), self.files.lead)
      self.files.writer.scalars(step, m)
      self.latest = {**m, "step": step}

  def _check_finite(self, step: int, m: dict[str, float], state) -> None:
    if m["skipped"]:
      logging.warning("step %d: non-finite loss/gradients (loss %s); update skipped (%d in a "
                      "row, %d in total)", step, m["loss"], m["skipped_streak"], m["skipped_total"])
    if m["skipped_streak"] >= self.max_streak:
      self.checkpoints.save_now(state)
      raise TrainingDiverged(
          f"{int(m['skipped_streak'])} consecutive non-finite steps up to step {step} "
          f"(config.max_nonfinite_streak = {self.max_streak}); parameters are those of the "
          f"last finite step, saved in {ckpt.checkpoint_dir(self.files.workdir)}. Lower "
          "config.optim.lr, enable config.optim.clip_grad_norm or config.loss.norm_pix.")


class DrawPanels(Action):
  """Reconstruction panels (PNG under <workdir>/panels and TensorBoard) of a task that draws
  them (`task.draws_panels`: the MAE) every `every` steps and after the last."""

  def __init__(self, program, files: RunFiles, every: int, rng: jax.Array, norm_pix: bool):
    self.program, self.files, self.every = program, files, every
    self.rng, self.norm_pix = rng, norm_pix

  def run(self, step, state, batch, metrics) -> None:
    cube, pred, mask = self.program.predict_host(state.params, batch["cube"], self.rng)
    if not self.files.lead:
      return
    spec = self.program.model.spec
    img = panels.make_panel(cube, pred, mask, grid=self.program.grid, t_patch=spec.t_patch,
                            patch=spec.patch, bands=self.files.meta["bands"], step=step,
                            norm_pix=self.norm_pix)
    png = panels.encode_png(img)
    folder = storage.join(self.files.workdir, "panels")
    storage.makedirs(folder)
    storage.write_bytes(storage.join(folder, f"step_{step:07d}.png"), png)
    self.files.writer.image_png(step, "reconstruction", png, img.shape[0], img.shape[1])


class Evaluate(Action):
  """`evaluate(program, state, step) -> {name: float}` every `every` steps and after the last;
  logged, written under "eval/" and merged into the report's latest metrics."""

  def __init__(self, evaluate: Callable, program, files: RunFiles, report: Report, every: int):
    self.evaluate, self.program, self.files = evaluate, program, files
    self.report, self.every = report, every

  def run(self, step, state, batch, metrics) -> None:
    self.report.flush(state)
    with jax.set_mesh(self.program.mesh):
      m = {f"eval/{k}": float(v) for k, v in self.evaluate(self.program, state, step).items()}
    metrics_lib.log_line(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()),
                         self.files.lead)
    self.files.writer.scalars(step, m)
    self.report.latest = {**self.report.latest, **m}
