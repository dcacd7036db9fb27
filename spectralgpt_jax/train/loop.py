"""`train(config, workdir)`: the pretraining loop, the only glue between the rooms.

Sections: Mesh -> Data -> Model and optimizer -> Shapes and shardings -> Init or restore ->
Step functions -> Loop. Resume order: this workdir's latest committed checkpoint (state and
data iterator), else `config.init_from` (params only), else from scratch.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import jax
import numpy as np
from absl import logging
from etils import epath

from data_pipelines import pipeline as data_lib
from spectralgpt_jax.models import shapes
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train import build, init_from, metrics as metrics_lib, optim
from spectralgpt_jax.train import panels, program as program_lib, resume, run_length
from spectralgpt_jax.train.preemption import PreemptionWatch


class TrainingDiverged(RuntimeError):
  """Too many consecutive non-finite steps; a checkpoint was written before raising."""


def _meta(config, model_meta: dict[str, Any], schedule) -> dict[str, Any]:
  return {"config": config.to_dict(), "model": model_meta, "schedule": schedule.to_dict(),
          **data_lib.data_meta(config.data)}


def _check_resume(meta: dict[str, Any], model_meta: dict[str, Any], workdir: str) -> None:
  saved = meta.get("model", {})
  keys = ("name", "img_size", "scan")
  if any(saved.get(k) != model_meta.get(k) for k in keys if k in saved or k in model_meta):
    raise ValueError(f"{ckpt.checkpoint_dir(workdir)} holds a run of model {saved}, but the "
                     f"config asks for {model_meta}; use another --workdir (or init_from)")


def train(config, workdir: str, evaluate: Callable | None = None) -> dict[str, float]:
  """Runs or resumes training in `workdir` (pretraining an MAE or fine-tuning a classifier, by
  the model's kind); returns the last step's metrics.

  `evaluate(program, state, step) -> {name: float}`, if given, runs every
  `config.eval_every_steps` steps (0: only at the end) and after the last step; its metrics are
  logged, written to TensorBoard under "eval/" and returned with the last step's.

  A run already at (or past) `config.total_steps` returns once its checkpoint is restored and
  verified, before anything is compiled (unless `evaluate` is given: it then evaluates the last
  state). The restore is what finds a damaged last step (then retrained from an intact one).
  """
  workdir = ckpt.absolute(workdir)
  lead = jax.process_index() == 0
  run_length.resolve_num_examples(config)
  total = int(config.total_steps)
  schedule = None  # the config's
  saved = resume.peek(workdir)
  if saved is not None and (saved[0] < total or evaluate is not None):
    schedule = resume.schedule_for_resume(config, saved[1], saved[0])

  # -------------------------------------------------------- Mesh
  mesh = mesh_lib.make_mesh(config.mesh)
  logging.info("mesh %s over %d devices (%d processes), rules %s", dict(mesh.shape),
               jax.device_count(), jax.process_count(), config.sharding.rules)

  # ------------------- Model, optimizer, shardings, step functions
  program = program_lib.build_program(config, mesh, schedule_settings=schedule)
  model, spec, shardings = program.model, program.model.spec, program.shardings
  model_meta = {"name": config.model.name, **build.model_kwargs(config.model)}
  grid = program.grid

  # -------------------------------------------------------- Data
  data_iter = data_lib.make_iterator(config.data, process_index=jax.process_index(),
                                     process_count=jax.process_count())

  # --------------------------------------------- Init or restore
  mngr = ckpt.make_manager(workdir, max_to_keep=config.checkpoint.max_to_keep,
                           async_save=config.checkpoint.async_save)
  base_rng = jax.random.key(config.seed)
  on_corrupt = config.checkpoint.get("on_corrupt", "fallback")
  if on_corrupt not in ("fallback", "fail"):
    raise ValueError(f"config.checkpoint.on_corrupt={on_corrupt!r}: use 'fallback' or 'fail'")
  with jax.set_mesh(mesh):
    resumed = ckpt.restore_intact(mngr, program.abstract, data_iter,
                                  fallback=on_corrupt == "fallback")
    if resumed is not None:
      start, state, saved_meta = resumed
      _check_resume(saved_meta, model_meta, workdir)
      logging.info("resumed from %s at step %d", ckpt.checkpoint_dir(workdir), start)
    else:
      start = 0
      state = build.init_sharded(model, program.tx, jax.random.fold_in(base_rng, 0), shardings)
      if config.init_from.workdir:
        params = init_from.load_into(state.params, shardings.params, config.init_from, mesh)
        state = build.fresh_with_params(params, program.tx, shardings)
  if start >= total and evaluate is None:
    logging.info("%s is already at step %d of config.total_steps %d: nothing to train (raise "
                 "--config.total_steps to continue)", workdir, start, total)
    mngr.close()
    return {"step": start}
  logging.info("model %s: %.1fM parameters", config.model.name,
               shapes.count(state.params) / 1e6)

  # ------------------------------------------------- Compile
  mask_rng = jax.random.fold_in(base_rng, 1)
  n_panel = min(int(config.log.panel_examples), config.batch_size) if program.kind == "mae" else 0
  batch_shardings = program.batch_shardings()
  t0 = time.perf_counter()
  compiled = program.lower().compile()
  logging.info("train step compiled in %.1f s (%s)", time.perf_counter() - t0, program.ops.name)

  # -------------------------------------------------------- Loop
  writer = metrics_lib.Writer(os.path.join(workdir, "tensorboard"), active=lead)
  mask_ratio = config.masking.ratio if "masking" in config else 0.0
  flops = metrics_lib.model_flops_per_example(spec, mask_ratio, config.data.image_size)
  peak = metrics_lib.peak_flops(jax.devices()[0].device_kind, config.log.peak_tflops_per_device)
  meter = metrics_lib.Throughput(config.batch_size, flops, jax.device_count(), peak)
  meta = _meta(config, model_meta, schedule or optim.ScheduleSettings.from_config(config))
  if lead and start == 0:
    writer.text(0, "config", "<pre>" + str(config) + "</pre>")
  last: dict[str, float] = {"step": start}

  def report(step: int, device_metrics) -> None:
    nonlocal last
    m = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
    last = {**m, "step": step}
    if m["skipped"]:
      logging.warning("step %d: non-finite loss/gradients (loss %s); update skipped (%d in a "
                      "row, %d in total)", step, m["loss"], m["skipped_streak"], m["skipped_total"])
    if m["skipped_streak"] >= config.max_nonfinite_streak:
      ckpt.save(mngr, int(jax.device_get(state.step)), state, data_iter, meta, force=True)
      mngr.wait_until_finished()
      raise TrainingDiverged(
          f"{int(m['skipped_streak'])} consecutive non-finite steps up to step {step} "
          f"(config.max_nonfinite_streak = {config.max_nonfinite_streak}); parameters are those "
          f"of the last finite step, saved in {ckpt.checkpoint_dir(workdir)}. Lower "
          "config.optim.lr, enable config.optim.clip_grad_norm or config.loss.norm_pix.")
    if step % config.log.every_steps == 0 or step == total:
      m.update(meter.measure(step))
      eta = (total - step) / m["steps_per_sec"] if "steps_per_sec" in m else None
      metrics_lib.log_line(metrics_lib.progress_line(step, total, m, eta), lead)
      writer.scalars(step, m)
      last = {**m, "step": step}

  def panel(step: int, batch) -> None:
    with jax.set_mesh(mesh):
      out = program.predict(state.params, batch["cube"], jax.random.fold_in(base_rng, 2))
    cube, pred, mask = jax.device_get(out)
    if not lead:
      return
    img = panels.make_panel(cube, pred, mask, grid=grid, t_patch=spec.t_patch, patch=spec.patch,
                            bands=meta["bands"], step=step, norm_pix=config.loss.norm_pix)
    png = panels.encode_png(img)
    folder = epath.Path(workdir) / "panels"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"step_{step:07d}.png").write_bytes(png)
    writer.image_png(step, "reconstruction", png, img.shape[0], img.shape[1])

  def run_eval(step: int) -> None:
    nonlocal last
    with jax.set_mesh(mesh):
      m = {f"eval/{k}": float(v) for k, v in evaluate(program, state, step).items()}
    metrics_lib.log_line(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in m.items()),
                         lead)
    writer.scalars(step, m)
    last = {**last, **m}

  eval_every = int(config.get("eval_every_steps", 0) or 0)
  pending = None
  step = start
  meter.start(start)
  with PreemptionWatch() as watch:
    while step < total:
      host = next(data_iter)
      batch = {k: jax.make_array_from_process_local_data(sh, host[k])
               for k, sh in batch_shardings.items()}
      state, metrics = compiled(state, batch, mask_rng)
      step += 1
      if pending is not None:
        report(*pending)  # one step behind: the host never waits for the step just dispatched
      pending = (step, metrics)
      every = config.log.panel_every_steps
      if every and (step % every == 0 or step == total) and n_panel:
        panel(step, batch)
      if evaluate is not None and eval_every and step % eval_every == 0 and step < total:
        report(*pending)
        pending = None
        run_eval(step)
      stop = watch.reached(step, mngr)
      ckpt.save(mngr, step, state, data_iter, meta, every_steps=config.checkpoint.every_steps,
                force=stop or step == total)
      if stop:
        logging.warning("stopping at step %d on request (checkpoint written)", step)
        break
    if pending is not None:
      report(*pending)
  if evaluate is not None and step == total:
    run_eval(step)
  mngr.wait_until_finished()
  mngr.close()
  writer.close()
  for line in data_lib.skipped_inputs(data_iter):
    logging.warning("data: skipped shard %s", line)
  if lead:
    logging.info("done at step %d; checkpoints in %s, TensorBoard logs in %s", step,
                 ckpt.checkpoint_dir(workdir), os.path.join(workdir, "tensorboard"))
  return last
