"""The dense objective: per-pixel cross-entropy of a segmentation or change-detection model.

Batch {"cube", "mask"} (segmentation) or {"cube", "cube2", "mask"} (change detection), mask
int32 [B, H, W] with -1 = ignored. Loss: `losses.pixel_cross_entropy`, with class weights when
given (OSCD: the official weights from the training change fraction, `losses.oscd_class_weights`).
The optimizer side (schedules, frozen encoder) is train/optim.py and train/schedules.py.
`DenseTask` (kinds "seg" and "change") builds them from config.dense.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from spectralgpt_jax import losses
from spectralgpt_jax.train.state import TrainState, apply_gradients
from spectralgpt_jax.train.tasks import base


def _inputs(batch: dict[str, jax.Array], two_dates: bool) -> tuple[jax.Array, ...]:
  return (batch["cube"], batch["cube2"]) if two_dates else (batch["cube"],)


def make_train_step(model: nn.Module, tx: optax.GradientTransformationExtraArgs,
                    schedule: optax.Schedule, *, rules: Any = (),
                    class_weights: Sequence[float] | None = None) -> Callable:
  """train_step(state, batch, rng) -> (state, metrics): one optimizer step on the per-pixel
  loss; metrics as the other steps' (loss, norms, lr, skip counters) plus pixel accuracy."""
  two_dates = model.spec.kind == "change"
  weights = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)

  def loss_fn(params, batch, rng):
    out = model.apply({"params": params}, *_inputs(batch, two_dates), train=True,
                      rngs={"dropout": rng})
    loss = losses.pixel_cross_entropy(out, batch["mask"], class_weights=weights)
    return loss, out

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array):
    with nn.logical_axis_rules(rules):
      (loss, out), grads = grad_fn(state.params, batch, jax.random.fold_in(rng, state.step))
      valid = batch["mask"] != losses.IGNORE_INDEX
      correct = jnp.sum((out.argmax(-1) == batch["mask"]) & valid)
      return apply_gradients(state, grads, loss, tx, schedule,
                             pixel_accuracy=correct / jnp.maximum(jnp.sum(valid), 1))

  return train_step


def make_predict_fn(model: nn.Module, *, rules: Any = ()) -> Callable:
  """predict(params, cube[, cube2]) -> class probabilities [B, K, H, W] float32 (eval mode)."""

  def predict(params, *cubes):
    with nn.logical_axis_rules(rules):
      out = model.apply({"params": params}, *cubes, train=False)
    return jnp.moveaxis(jax.nn.softmax(out, axis=-1), -1, 1)

  return predict


class DenseTask(base.Task):
  """Segmentation / change detection; predict: class probabilities [B, K, H, W] of
  (cube[, cube2]) in eval mode (`predict_host`: any N)."""

  def check_config(self, config, spec) -> None:
    base.require(config, "dense", "a dense model",
                 "a dense config: configs/eval/oscd.py, segmunich.py, sen1floods11.py")
    weights = _weights_of(config)
    if config.dense.get("oscd_class_weights") and weights is None:
      raise ValueError("config.dense.oscd_class_weights is set but config.dense.class_weights "
                       "is empty: the OSCD evaluator fills it from the training change "
                       "fraction; for a plain `train`, set --config.dense.class_weights")
    if weights is not None and len(weights) != spec.num_classes:
      raise ValueError(f"config.dense.class_weights has {len(weights)} values for "
                       f"{spec.num_classes} classes")

  def batch_spec(self, config, spec, cube: jax.ShapeDtypeStruct) -> base.Batch:
    """cube2 (change detection): as cube; mask: int32 [B, H, W], -1 = ignored."""
    dates = {"cube": cube, "cube2": cube} if spec.kind == "change" else {"cube": cube}
    mask = jax.ShapeDtypeStruct((cube.shape[0], *cube.shape[-2:]), jnp.int32)
    return {**dates, "mask": mask}

  def make_step(self, config, model, tx, schedule, rules) -> Callable:
    return make_train_step(model, tx, schedule, rules=rules, class_weights=_weights_of(config))

  def make_predict(self, config, model, rules) -> tuple[Callable, tuple[str, ...]]:
    inputs = ("cube", "cube2") if model.spec.kind == "change" else ("cube",)
    return make_predict_fn(model, rules=rules), inputs


def _weights_of(config) -> tuple[float, ...] | None:
  """config.dense.class_weights as floats, None when empty (unweighted)."""
  return tuple(float(w) for w in config.dense.class_weights) or None
