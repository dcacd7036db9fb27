"""The contract of a training objective: what the program needs from each kind of model.

A task answers, for the models of its kinds (`ModelSpec.kind`), with the same methods:
  check_config   the config blocks and settings it needs (one clear ValueError otherwise);
  batch_spec     the global batch it trains on, key -> ShapeDtypeStruct (no sharding: the
                 program adds the batch sharding for abstract batches and `jax.jit`);
  make_step      the pure `train_step(state, batch, rng) -> (state, metrics)`;
  make_predict   the pure function the evaluators (or the MAE's panels) call, and its inputs;
  predict_host   the call of its jitted form from the host, NumPy out;
  frozen_params  the parameters the optimizer leaves as loaded.
train/program.py picks a task once from `tasks.TASKS` (kind -> task) and has no per-kind code:
a new objective is a new module here and one entry of that table.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

import jax
import numpy as np
import optax
from flax import linen as nn

from spectralgpt_jax.models.variants import ModelSpec
from spectralgpt_jax.sharding import mesh as mesh_lib

Batch = dict[str, jax.ShapeDtypeStruct]

# A predict input that is the run's random key (replicated), not a batch key (split like the batch).
RNG = "rng"

# Top-level parameters of the encoder (what `config.model.freeze_encoder` keeps as loaded).
ENCODER_PARAMS = ("patch_embed", "pos_embed_spatial", "pos_embed_temporal", "pos_embed_date",
                  "blocks")


class Task(abc.ABC):
  """One training objective. Stateless: one instance serves every program of its kinds."""

  # Whether the loop writes reconstruction panels with `predict_host` (pretraining).
  draws_panels: bool = False

  def check_config(self, config, spec: ModelSpec) -> None:
    """Raises ValueError naming the config field when `config` cannot train `spec`."""
    del config, spec

  @abc.abstractmethod
  def batch_spec(self, config, spec: ModelSpec, cube: jax.ShapeDtypeStruct) -> Batch:
    """The global batch: {"cube": cube, ...other keys} -> ShapeDtypeStruct."""

  @abc.abstractmethod
  def make_step(self, config, model: nn.Module, tx: optax.GradientTransformationExtraArgs,
                schedule: optax.Schedule, rules: Any) -> Callable:
    """The pure `train_step(state, batch, rng) -> (state, float32 metrics)` (not jitted)."""

  @abc.abstractmethod
  def make_predict(self, config, model: nn.Module,
                   rules: Any) -> tuple[Callable, tuple[str, ...]]:
    """(pure `predict(params, *inputs)`, the inputs' names): batch keys, or RNG."""

  def predict_host(self, program, params, *inputs) -> Any:
    """`program.predict` of host arrays [N, ...] of any N (padded to the mesh's batch split
    for the call, the padding dropped from the result) -> NumPy; single-process."""
    return predict_padded(program, params, *inputs)

  def frozen_params(self, config) -> tuple[str, ...]:
    """Top-level parameters the optimizer leaves as they are (optim.make_optimizer frozen=)."""
    return ENCODER_PARAMS if config.model.get("freeze_encoder", False) else ()


def predict_padded(program, params, *cubes: np.ndarray) -> np.ndarray:
  """`program.predict(params, *cubes)` of host cubes [N, ...] (the first N rows of the result)."""
  n, split = cubes[0].shape[0], mesh_lib.batch_divisor(program.mesh)
  padded = []
  for c in cubes:
    c = np.asarray(c, np.float32)
    padded.append(np.concatenate([c, np.repeat(c[-1:], -n % split, axis=0)]))
  with jax.set_mesh(program.mesh):
    out = program.predict(params, *[jax.device_put(c, program.cube_sharding) for c in padded])
  return np.asarray(out)[:n]


def require(config, block: str, kind: str, where: str, *, accum: bool = False) -> None:
  """`config.<block>` must exist (and config.optim.accum_steps be 1 unless `accum`)."""
  if block not in config or (not accum and config.optim.accum_steps != 1):
    need = "" if accum else " and config.optim.accum_steps = 1"
    raise ValueError(f"config.model.name {config.model.name!r} is {kind}: it needs config.{block} "
                     f"({where}){need}")
