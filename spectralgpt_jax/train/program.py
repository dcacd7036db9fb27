"""The compiled side of a run: model, optimizer, shardings and the jitted train step for a mesh.

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
import numpy as np
import optax
from flax import linen as nn
from jax.sharding import Mesh, NamedSharding

from spectralgpt_jax.kernels import select
from spectralgpt_jax.models import ops as ops_lib, shapes
from spectralgpt_jax.models.mae import token_grid
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax.sharding import rules as rules_lib
from spectralgpt_jax.train import build, optim, step as step_lib
from spectralgpt_jax.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class TrainProgram:
  """Everything the loop jits, with the shapes and shardings it runs on.

  Attributes:
    model: the Flax MAE (with the chosen `ops`).
    tx, schedule: optimizer and learning-rate schedule.
    mesh, rules: device mesh and logical sharding rules.
    abstract: TrainState of ShapeDtypeStructs carrying their shardings.
    shardings: TrainState of NamedShardings.
    cube_shape: global batch [B, C, S, S] (or [B, T, C, S, S]); cube_sharding its sharding.
    train_step: jitted `(state, {"cube"}, rng) -> (state, metrics)`, state donated.
    predict: jitted `(params, cube, rng) -> (pred, mask)` for reconstruction panels.
  """

  model: nn.Module
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  mesh: Mesh
  rules: Any
  abstract: TrainState
  shardings: TrainState
  cube_shape: tuple[int, ...]
  cube_sharding: NamedSharding
  train_step: Callable
  predict: Callable

  @property
  def ops(self) -> ops_lib.Ops:
    return self.model.ops

  @property
  def grid(self) -> tuple[int, int, int]:
    return token_grid(self.model.spec, self.cube_shape)

  def abstract_batch(self) -> dict[str, jax.ShapeDtypeStruct]:
    return {"cube": jax.ShapeDtypeStruct(self.cube_shape, np.float32,
                                         sharding=self.cube_sharding)}

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


def build_program(config, mesh: Mesh) -> TrainProgram:
  """Model, optimizer, shardings and jitted functions of `config` on `mesh`."""
  check_batch(config, mesh)
  rules = rules_lib.get_rules(config.sharding.rules, tuple(config.sharding.overrides))
  spec = build.build_model(config.model).spec
  cube_shape = shapes.abstract_input(spec, config.batch_size, config.data.image_size).shape
  grid = token_grid(spec, cube_shape)  # fails early, naming the shape, if the model can't take it
  ops = select.ops_from_config(config.get("kernels"), mesh.devices.flat,
                               max_tokens=grid[0] * grid[1] * grid[2])
  model = build.build_model(config.model, ops=ops)
  tx, schedule = optim.make_optimizer(config.optim, int(config.total_steps))
  abstract, shardings = build.state_shardings(model, tx, mesh, rules)
  cube_sharding = mesh_lib.batch_sharding(mesh, len(cube_shape))
  repl = mesh_lib.replicated(mesh)

  step_fn = step_lib.make_train_step(
      model, tx, schedule, mask_ratio=config.masking.ratio, accum_steps=config.optim.accum_steps,
      rules=rules, mse_weight=config.loss.mse_weight, spectral_weight=config.loss.spectral_weight,
      norm_pix=config.loss.norm_pix)
  train_step = jax.jit(step_fn, in_shardings=(shardings, {"cube": cube_sharding}, repl),
                       out_shardings=(shardings, repl), donate_argnums=0)
  n_panel = min(int(config.log.panel_examples), config.batch_size)
  predict_fn = step_lib.make_predict_fn(model, mask_ratio=config.masking.ratio, rules=rules)
  first_rows = lambda p, c, r: jax.tree.map(lambda a: a[:n_panel], (c, *predict_fn(p, c, r)))
  predict = jax.jit(first_rows, in_shardings=(shardings.params, cube_sharding, repl),
                    out_shardings=repl)
  return TrainProgram(model=model, tx=tx, schedule=schedule, mesh=mesh, rules=rules,
                      abstract=abstract, shardings=shardings, cube_shape=cube_shape,
                      cube_sharding=cube_sharding, train_step=train_step, predict=predict)


def lower_train_step(config, mesh: Mesh) -> jax.stages.Lowered:
  """The train step of `config` lowered for `mesh` (any platform; see the module docstring)."""
  return build_program(config, mesh).lower()
