"""The train state: step, params, optimizer state. A pytree; its dict form is the checkpoint.

Not `flax.training.train_state.TrainState`: the step calls `tx.update(..., loss=)` (the
non-finite guard needs the loss) and the checkpoint contract is a plain dict
{"params", "opt_state", "step"} that the export code reads without our classes. The rng is
not stored: each step folds the step number into the run's base key.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from spectralgpt_jax.models import shapes

PyTree = Any


class TrainState(flax.struct.PyTreeNode):
  """Attributes: step int32 [] (optimizer steps done), params (unboxed Flax params),
  opt_state (optax state of `optim.make_optimizer`)."""

  step: jax.Array
  params: PyTree
  opt_state: PyTree

  def to_dict(self) -> dict[str, PyTree]:
    """The checkpointed form (item "state")."""
    return {"params": self.params, "opt_state": self.opt_state, "step": self.step}

  @classmethod
  def from_dict(cls, d: dict[str, PyTree]) -> "TrainState":
    return cls(step=d["step"], params=d["params"], opt_state=d["opt_state"])


def init_variables(model: nn.Module, rng: jax.Array, image_size: int | None = None) -> PyTree:
  """Boxed Flax variables (LogicallyPartitioned leaves) of `model` for one example."""
  xs = [jnp.zeros(a.shape, jnp.float32)
        for a in shapes.abstract_inputs(model.spec, 1, image_size, shapes.input_bands(model))]
  params_rng, mask_rng = jax.random.split(rng)
  return model.init({"params": params_rng, "masking": mask_rng}, *xs)


def create_state(params: PyTree, tx: optax.GradientTransformation) -> TrainState:
  """A fresh state at step 0 from unboxed params."""
  return TrainState(step=jnp.zeros([], jnp.int32), params=params, opt_state=tx.init(params))


def init_state(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
               image_size: int | None = None) -> TrainState:
  """model.init + tx.init; jit it with out_shardings to create the state already sharded."""
  params = nn.unbox(init_variables(model, rng, image_size))["params"]
  return create_state(params, tx)


def apply_gradients(state: TrainState, grads: Any, loss: jax.Array,
                    tx: optax.GradientTransformationExtraArgs, schedule: optax.Schedule,
                    **metrics: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
  """One guarded optimizer update of `state` (train.optim's tx takes `loss=` for the guard).

  Returns the next state and float32 metrics: loss, the given `metrics`, grad / update / param
  norms, lr (the schedule advances with applied, not skipped, updates, like AdamW's count),
  skipped (1 if this update was skipped as non-finite), skipped_total, skipped_streak.
  """
  updates, opt_state = tx.update(grads, state.opt_state, state.params, loss=loss)
  params = optax.apply_updates(state.params, updates)
  out = {"loss": loss, **metrics,
         "grad_norm": optax.tree.norm(grads),
         "update_norm": optax.tree.norm(updates),
         "param_norm": optax.tree.norm(params),
         "lr": schedule(state.step - state.opt_state.total),
         "skipped": opt_state.total - state.opt_state.total,  # GuardState counters
         "skipped_total": opt_state.total,
         "skipped_streak": opt_state.streak}
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
  return new_state, {k: jnp.asarray(v, jnp.float32) for k, v in out.items()}
