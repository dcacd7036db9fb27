"""The compiled side of a run: model, optimizer, shardings and the jitted train step for a mesh.

One program type serves every objective. The objective is a task (train/tasks/) picked once
from the model's kind through `tasks.TASKS`: pretraining an MAE (batch {"cube"}), fine-tuning a
classifier ({"cube", "label"}), segmentation ({"cube", "mask"}) and change detection ({"cube",
"cube2", "mask"}). The task gives the batch spec, the pure step and the predict function; this
module jits them with shardings and holds no per-kind code. The loop around them is the same.

`build_program(config, mesh)` needs no data, checkpoint or device memory, so the same code
serves the training loop (a mesh of this host's devices) and ahead-of-time compilation for
another machine (a mesh of a TPU topology's or a GPU target's devices, built on a CPU host):
implementations of the model's products are chosen from `mesh`'s devices (kernels.select),
never from the host process.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import optax
from flax import linen as nn
from jax.sharding import Mesh, NamedSharding

from spectralgpt_jax.kernels import select
from spectralgpt_jax.models import ops as ops_lib, shapes
from spectralgpt_jax.models.mae import band_plan, token_grid
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax.sharding import rules as rules_lib
from spectralgpt_jax.train import band_set as band_set_lib
from spectralgpt_jax.train import model_state, optim, tasks
from spectralgpt_jax.train.state import TrainState
from spectralgpt_jax.train.tasks import base


@dataclasses.dataclass(frozen=True)
class TrainProgram:
  """Everything the loop jits, with the shapes and shardings it runs on.

  Attributes:
    model: the Flax model of the config (with the chosen `ops`).
    task: the objective (tasks.TASKS[model.spec.kind]).
    tx, schedule: optimizer and learning-rate schedule.
    mesh, rules: device mesh and logical sharding rules.
    abstract: TrainState of ShapeDtypeStructs carrying their shardings.
    shardings: TrainState of NamedShardings.
    batch_spec: the global batch, key -> ShapeDtypeStruct (no sharding; `abstract_batch` has
      them): "cube" float32 [B, C, S, S] (or [B, T, C, S, S]) and the task's other keys.
    train_step: jitted `(state, batch, rng) -> (state, metrics)`, state donated.
    predict: jitted `(params, *inputs)` of the task (`task.make_predict`); MAE: `(params, cube,
      rng) -> (cube, pred, mask)` of the first `config.log.panel_examples` rows; classifier:
      `(params, cube) -> logits [B, K]`; dense: `(params, cube[, cube2]) -> probabilities
      [B, K, H, W]` (eval mode). `predict_host` calls it on host arrays.
    band_set: `config.spectral`'s band set (train/band_set.py; the loop prepares host
      batches with it), None for the model's own Sentinel-2 bands.
  """

  model: nn.Module
  task: base.Task
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  mesh: Mesh
  rules: Any
  abstract: TrainState
  shardings: TrainState
  batch_spec: dict[str, jax.ShapeDtypeStruct]
  train_step: Callable
  predict: Callable
  band_set: band_set_lib.BandSet | None = None

  @property
  def ops(self) -> ops_lib.Ops:
    return self.model.ops

  @property
  def kind(self) -> str:
    return self.model.spec.kind

  @property
  def cube_shape(self) -> tuple[int, ...]:
    return tuple(self.batch_spec["cube"].shape)

  @property
  def cube_sharding(self) -> NamedSharding:
    return self.batch_shardings()["cube"]

  @property
  def grid(self) -> tuple[int, int, int]:
    return token_grid(self.model.spec, self.cube_shape)

  def batch_shardings(self) -> dict[str, NamedSharding]:
    """Every batch key split over the mesh's data axes on its leading (batch) dimension."""
    return {k: mesh_lib.batch_sharding(self.mesh, len(v.shape))
            for k, v in self.batch_spec.items()}

  def abstract_batch(self) -> dict[str, jax.ShapeDtypeStruct]:
    shardings = self.batch_shardings()
    return {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=shardings[k])
            for k, v in self.batch_spec.items()}

  def predict_host(self, params, *inputs):
    """The task's host helper around `predict` (tasks/base.py: `Task.predict_host`)."""
    return self.task.predict_host(self, params, *inputs)

  def lower(self) -> jax.stages.Lowered:
    """The train step lowered for abstract state, batch and key (nothing is allocated)."""
    rng = jax.eval_shape(lambda: jax.random.key(0))
    with jax.set_mesh(self.mesh):
      return self.train_step.lower(self.abstract, self.abstract_batch(), rng)


def check_batch(config, mesh: Mesh) -> None:
  """The global batch must split evenly over data x fsdp devices and accumulation steps."""
  split = mesh_lib.batch_divisor(mesh) * config.optim.accum_steps
  if config.batch_size % split:
    raise ValueError(f"config.batch_size {config.batch_size} must be divisible by the batch "
                     f"split (mesh data x fsdp = {mesh_lib.batch_divisor(mesh)}) x "
                     f"config.optim.accum_steps ({config.optim.accum_steps})")
  if config.data.batch_size != config.batch_size:
    raise ValueError(f"config.data.batch_size ({config.data.batch_size}) != config.batch_size "
                     f"({config.batch_size}); set only config.batch_size")


def build_program(config, mesh: Mesh,
                  schedule_settings: optim.ScheduleSettings | None = None) -> TrainProgram:
  """Model, optimizer, shardings and jitted functions of `config` on `mesh`.

  `schedule_settings`, if given, replaces the config's learning-rate schedule (a resumed run
  keeping the schedule its checkpoint recorded)."""
  check_batch(config, mesh)
  rules = rules_lib.get_rules(config.sharding.rules, tuple(config.sharding.overrides))
  built = model_state.build_model(config.model)
  spec = built.spec
  task = tasks.task_for(spec.kind)
  task.check_config(config, spec)
  cube = shapes.abstract_input(spec, config.batch_size, config.data.image_size,
                               shapes.input_bands(built))
  bands = band_set_lib.from_config(config)
  plan = None
  if bands is not None:  # the band set's planes; its wavelengths place the groups
    cube = jax.ShapeDtypeStruct((*cube.shape[:-3], bands.num_bands, *cube.shape[-2:]),
                                cube.dtype)
    plan = band_plan(spec, bands.model_kwargs.get("wavelengths"),
                     bands.model_kwargs.get("fwhm"))
    if spec.kind in band_set_lib.DENSE_KINDS:  # its heads are built for the band set
      band_set_lib.fix_dense_model(config, bands)
  grid = token_grid(spec, cube.shape, plan)  # fails early, naming the shape, if it can't take it
  ops = select.ops_from_config(config.get("kernels"), mesh.devices.flat,
                               max_tokens=grid[0] * grid[1] * grid[2])
  model = model_state.build_model(config.model, ops=ops)
  tx, schedule = optim.make_optimizer(config.optim, int(config.total_steps), depth=spec.depth,
                                      settings=schedule_settings,
                                      frozen=task.frozen_params(config))
  abstract, shardings = model_state.state_shardings(model, tx, mesh, rules)
  batch_spec = task.batch_spec(config, spec, cube)
  batch_sh = {k: mesh_lib.batch_sharding(mesh, len(v.shape)) for k, v in batch_spec.items()}
  repl = mesh_lib.replicated(mesh)
  train_step = jax.jit(task.make_step(config, model, tx, schedule, rules),
                       in_shardings=(shardings, batch_sh, repl),
                       out_shardings=(shardings, repl), donate_argnums=0)
  predict_fn, inputs = task.make_predict(config, model, rules)
  predict = jax.jit(predict_fn, out_shardings=repl, in_shardings=(
      shardings.params, *[repl if k == base.RNG else batch_sh[k] for k in inputs]))
  return TrainProgram(model=model, task=task, tx=tx, schedule=schedule, mesh=mesh, rules=rules,
                      abstract=abstract, shardings=shardings, batch_spec=batch_spec,
                      train_step=train_step, predict=predict, band_set=bands)


def lower_train_step(config, mesh: Mesh) -> jax.stages.Lowered:
  """The train step of `config` lowered for `mesh` (any platform; see the module docstring)."""
  return build_program(config, mesh).lower()
