"""`train(config, workdir)`: the training loop, the only glue between the rooms.

Sections: Mesh -> Model, optimizer, shardings, step functions -> Data -> Init or restore ->
Compile -> Loop. Resume order: this workdir's latest committed checkpoint (state and data
iterator), else `config.init_from` (params only), else from scratch. The loop body is: get a
batch, run the step, then run each periodic action (train/periodic.py) whose time it is.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import jax
from absl import logging

from data_pipelines import pipeline as data_lib
from spectralgpt_jax.models import shapes
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train import init_from, metrics as metrics_lib, model_state, optim
from spectralgpt_jax.train import periodic, program as program_lib, resume, run_length
from spectralgpt_jax.train.preemption import PreemptionWatch


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
  """Runs or resumes training in `workdir` (the objective by the model's kind: train/tasks/);
  returns the last step's metrics.

  `evaluate(program, state, step) -> {name: float}`, if given, runs every
  `config.eval_every_steps` steps (0: only at the end) and after the last step; its metrics are
  logged, written to TensorBoard under "eval/" and returned with the last step's.

  A run already at (or past) `config.total_steps` returns once its checkpoint is restored and
  verified, before anything is compiled (unless `evaluate` is given: it then evaluates the last
  state). The restore is what finds a damaged last step (then retrained from an intact one).
  Raises periodic.TrainingDiverged after `config.max_nonfinite_streak` non-finite steps in a row.
  """
  workdir = ckpt.absolute(workdir)
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
  model_meta = {"name": config.model.name, **model_state.model_kwargs(config.model)}

  # -------------------------------------------------------- Data
  data_iter = data_lib.make_iterator(config.data, process_index=jax.process_index(),
                                     process_count=jax.process_count())

  # --------------------------------------------- Init or restore
  mngr = ckpt.make_manager(workdir, max_to_keep=config.checkpoint.max_to_keep,
                           async_save=config.checkpoint.async_save)
  start, state = _init_or_restore(config, workdir, program, mngr, data_iter, model_meta)
  if start >= total and evaluate is None:
    logging.info("%s is already at step %d of config.total_steps %d: nothing to train (raise "
                 "--config.total_steps to continue)", workdir, start, total)
    mngr.close()
    return {"step": start}
  logging.info("model %s: %.1fM parameters", config.model.name,
               shapes.count(state.params) / 1e6)

  # -------------------------------------------------------- Loop
  lead = jax.process_index() == 0
  meta = _meta(config, model_meta, schedule or optim.ScheduleSettings.from_config(config))
  files = periodic.RunFiles(workdir, mngr, data_iter, meta, lead=lead,
                            writer=metrics_lib.Writer(os.path.join(workdir, "tensorboard"),
                                                      active=lead))
  if lead and start == 0:
    files.writer.text(0, "config", "<pre>" + str(config) + "</pre>")
  report, actions = _actions(config, program, files, start, evaluate)
  step = start
  if start < total:
    step = _run_steps(program, state, start, total, files, report, actions,
                      rng=jax.random.fold_in(jax.random.key(config.seed), 1))
  else:  # a finished run, evaluated once more
    for action in actions:
      if isinstance(action, periodic.Evaluate):
        action.run(start, state, None, None)
  mngr.wait_until_finished()
  mngr.close()
  files.writer.close()
  for line in data_lib.skipped_inputs(data_iter):
    logging.warning("data: skipped shard %s", line)
  if lead:
    logging.info("done at step %d; checkpoints in %s, TensorBoard logs in %s", step,
                 ckpt.checkpoint_dir(workdir), os.path.join(workdir, "tensorboard"))
  return report.latest


def _init_or_restore(config, workdir: str, program: program_lib.TrainProgram, mngr, data_iter,
                     model_meta: dict[str, Any]):
  """(first step, state): this workdir's latest intact checkpoint (the data iterator
  repositioned), else step 0 from `config.init_from` (params only) or from scratch."""
  on_corrupt = config.checkpoint.get("on_corrupt", "fallback")
  if on_corrupt not in ("fallback", "fail"):
    raise ValueError(f"config.checkpoint.on_corrupt={on_corrupt!r}: use 'fallback' or 'fail'")
  with jax.set_mesh(program.mesh):
    resumed = ckpt.restore_intact(mngr, program.abstract, data_iter,
                                  fallback=on_corrupt == "fallback")
    if resumed is not None:
      start, state, saved_meta = resumed
      _check_resume(saved_meta, model_meta, workdir)
      logging.info("resumed from %s at step %d", ckpt.checkpoint_dir(workdir), start)
      return start, state
    rng = jax.random.fold_in(jax.random.key(config.seed), 0)
    state = model_state.init_sharded(program.model, program.tx, rng, program.shardings)
    if config.init_from.workdir:
      params = init_from.load_into(state.params, program.shardings.params, config.init_from,
                                   program.mesh)
      state = model_state.fresh_with_params(params, program.tx, program.shardings)
  return 0, state


def _actions(config, program: program_lib.TrainProgram, files: periodic.RunFiles, start: int,
             evaluate: Callable | None) -> tuple[periodic.Report, list[periodic.Action]]:
  """The periodic actions, in the order they run after a step: report (every step, one
  behind), panels (a task that draws them), checkpoint, evaluation (last, when given)."""
  mask_ratio = config.masking.ratio if "masking" in config else 0.0
  flops = metrics_lib.model_flops_per_example(program.model.spec, mask_ratio,
                                              config.data.image_size)
  peak = metrics_lib.peak_flops(jax.devices()[0].device_kind, config.log.peak_tflops_per_device)
  meter = metrics_lib.Throughput(config.batch_size, flops, jax.device_count(), peak)
  checkpoints = periodic.SaveCheckpoint(files, int(config.checkpoint.every_steps))
  report = periodic.Report(config, files, meter, checkpoints, start)
  actions: list[periodic.Action] = [report]
  panel_every = int(config.log.panel_every_steps or 0)
  if program.task.draws_panels and panel_every > 0 and int(config.log.panel_examples) > 0:
    rng = jax.random.fold_in(jax.random.key(config.seed), 2)
    actions.append(periodic.DrawPanels(program, files, panel_every, rng,
                                       norm_pix=config.loss.norm_pix))
  actions.append(checkpoints)
  if evaluate is not None:
    eval_every = int(config.get("eval_every_steps", 0) or 0)
    actions.append(periodic.Evaluate(evaluate, program, files, report, eval_every))
  return report, actions


def _run_steps(program: program_lib.TrainProgram, state, start: int, total: int,
               files: periodic.RunFiles, report: periodic.Report,
               actions: list[periodic.Action], rng: jax.Array) -> int:
  """Steps start+1 .. total (or up to a requested stop); returns the last step run."""
  batch_shardings = program.batch_shardings()
  t0 = time.perf_counter()
  compiled = program.lower().compile()
  logging.info("train step compiled in %.1f s (%s)", time.perf_counter() - t0, program.ops.name)
  step = start
  report.meter.start(start)
  with PreemptionWatch() as watch:
    while step < total:
      host = next(files.data_iter)
      if program.band_set is not None:  # config.spectral: the band set's planes and mode
        host = program.band_set.prepare_batch(host)
      batch = {k: jax.make_array_from_process_local_data(sh, host[k])
               for k, sh in batch_shardings.items()}
      state, metrics = compiled(state, batch, rng)
      step += 1
      stopping = watch.reached(step, files.mngr)
      for action in actions:
        if action.due(step, total, stopping):
          action.run(step, state, batch, metrics)
      if stopping:
        logging.warning("stopping at step %d on request (checkpoint written)", step)
        break
    report.flush(state)
  return step
