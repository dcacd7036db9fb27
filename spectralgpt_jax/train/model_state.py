"""The model and its train state from a config: model, abstract state, shardings, sharded init."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import optax
from jax.sharding import Mesh, PartitionSpec as P

from spectralgpt_jax import models
from spectralgpt_jax.models import ops as ops_lib
from spectralgpt_jax.sharding import partition
from spectralgpt_jax.sharding.rules import Rules
from spectralgpt_jax.train import state as state_lib
from spectralgpt_jax.train.state import TrainState


def model_kwargs(model_cfg) -> dict[str, Any]:
  """JSON-able get_model kwargs from `config.model` (checkpoint meta["model"] minus the name)."""
  return models.record_kwargs(model_cfg.to_dict())


def build_model(model_cfg, ops: ops_lib.Ops = ops_lib.XLA_OPS) -> nn.Module:
  """The model `config.model` describes (an MAE to pretrain, a classifier to fine-tune, a dense
  model), with the given implementations of its products (kernels.select)."""
  return models.build_model(model_cfg.to_dict(), ops=ops)


def state_shardings(model: nn.Module, tx: optax.GradientTransformation, mesh: Mesh,
                    rules: Rules) -> tuple[TrainState, TrainState]:
  """(abstract state with shardings, TrainState of NamedShardings). No device memory used."""
  rng = jax.random.key(0)
  boxed = jax.eval_shape(lambda r: state_lib.init_variables(model, r), rng)["params"]
  pspecs = partition.param_specs(boxed, mesh, rules)
  abstract = jax.eval_shape(lambda r: state_lib.init_state(model, tx, r), rng)
  ospecs = partition.mirror_specs(abstract.opt_state, abstract.params, pspecs)
  specs = TrainState(step=P(), params=pspecs, opt_state=ospecs)
  shardings = partition.to_shardings(specs, mesh)
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract, shardings)
  return abstract, shardings


def init_sharded(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
                 shardings: TrainState) -> TrainState:
  """A fresh state, every array created directly with its sharding (never whole on a device)."""
  return jax.jit(lambda r: state_lib.init_state(model, tx, r), out_shardings=shardings)(rng)


def fresh_with_params(params: Any, tx: optax.GradientTransformation,
                      shardings: TrainState) -> TrainState:
  """Step-0 state around given (sharded) params: a new optimizer state."""
  return jax.jit(lambda p: state_lib.create_state(p, tx), out_shardings=shardings)(params)
