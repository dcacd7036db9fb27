"""The fine-tuning objective of the official recipe: classifier loss, mixup/cutmix, lr layer decay.

Spec section 4 (EuroSAT / BigEarthNet fine-tuning), written from its facts:
  single-label  mixup (alpha 0.8) or cutmix (alpha 1.0), switched with probability 0.5, one
                lambda and one box per batch mixing each example with the batch reversed;
                targets smoothed by 0.1 (off = 0.1 / K, on = 1 - 0.1 + off); soft-target
                cross-entropy.
  multi-label   no mixing; MultiLabelSoftMargin (mean over classes of the logistic loss).
The optimizer side of the recipe (betas, no-decay set, layer-wise lr decay) is train/optim.py.
`ClassifyTask` (kind "vit") trains on batch {"cube", "label"} from config.finetune.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from spectralgpt_jax.train.state import TrainState, apply_gradients
from spectralgpt_jax.train.tasks import base

LABEL_TYPES = ("single", "multi")


# ------------------------------------------------------------------------ losses and mixing
def smooth_one_hot(label: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
  """int [B] -> float32 [B, K]: 1 - smoothing + smoothing / K on the class, smoothing / K off."""
  off = smoothing / num_classes
  return jax.nn.one_hot(label, num_classes) * (1.0 - smoothing) + off


def soft_cross_entropy(logits: jax.Array, target: jax.Array) -> jax.Array:
  """Mean over the batch of -sum_k target_k log softmax(logits)_k."""
  return jnp.mean(-jnp.sum(target * jax.nn.log_softmax(logits.astype(jnp.float32)), -1))


def multilabel_soft_margin(logits: jax.Array, target: jax.Array) -> jax.Array:
  """torch MultiLabelSoftMarginLoss: mean over batch and classes of the logistic loss."""
  logits = logits.astype(jnp.float32)
  per = -(target * jax.nn.log_sigmoid(logits) + (1 - target) * jax.nn.log_sigmoid(-logits))
  return jnp.mean(per)


def cutmix_box(rng: jax.Array, lam: jax.Array, h: int, w: int) -> tuple[jax.Array, jax.Array]:
  """A box of area ~(1 - lam) H W at a uniform centre, clipped to the image: ([H, W] mask of
  the box, lam corrected to the clipped box's area)."""
  ky, kx = jax.random.split(rng)
  ratio = jnp.sqrt(1.0 - lam)
  cut_h, cut_w = (h * ratio).astype(jnp.int32), (w * ratio).astype(jnp.int32)
  cy, cx = jax.random.randint(ky, (), 0, h), jax.random.randint(kx, (), 0, w)
  y1, y2 = jnp.clip(cy - cut_h // 2, 0, h), jnp.clip(cy + cut_h // 2, 0, h)
  x1, x2 = jnp.clip(cx - cut_w // 2, 0, w), jnp.clip(cx + cut_w // 2, 0, w)
  rows, cols = jnp.arange(h)[:, None], jnp.arange(w)[None, :]
  box = (rows >= y1) & (rows < y2) & (cols >= x1) & (cols < x2)
  return box, 1.0 - (y2 - y1) * (x2 - x1) / (h * w)


def mix_batch(rng: jax.Array, cube: jax.Array, target: jax.Array, *, mixup_alpha: float,
              cutmix_alpha: float, switch_prob: float = 0.5,
              prob: float = 1.0) -> tuple[jax.Array, jax.Array]:
  """Batch-mode mixup or cutmix of cube [B, ..., H, W] and soft targets [B, K] with the batch
  reversed (timm's 'batch' mode). Alphas of 0 turn a method off."""
  if mixup_alpha <= 0 and cutmix_alpha <= 0:
    return cube, target
  k_apply, k_switch, k_lam, k_box = jax.random.split(rng, 4)
  use_cutmix = jnp.asarray(cutmix_alpha > 0)
  if mixup_alpha > 0 and cutmix_alpha > 0:
    use_cutmix = jax.random.uniform(k_switch) < switch_prob
  lam_mix = jax.random.beta(k_lam, max(mixup_alpha, 1e-6), max(mixup_alpha, 1e-6))
  lam_cut = jax.random.beta(k_lam, max(cutmix_alpha, 1e-6), max(cutmix_alpha, 1e-6))
  h, w = cube.shape[-2:]
  box, lam_box = cutmix_box(k_box, lam_cut, h, w)
  flipped = cube[::-1]
  mixed = jnp.where(use_cutmix, jnp.where(box, flipped, cube),
                    cube * lam_mix + flipped * (1.0 - lam_mix))
  lam = jnp.where(use_cutmix, lam_box, lam_mix)
  apply = jax.random.uniform(k_apply) < prob
  lam = jnp.where(apply, lam, 1.0)
  cube = jnp.where(apply, mixed, cube).astype(cube.dtype)
  return cube, target * lam + target[::-1] * (1.0 - lam)


# --------------------------------------------------------------------------------- step
def make_loss_fn(model: nn.Module, *, label_type: str, num_classes: int, smoothing: float,
                 mixup_alpha: float, cutmix_alpha: float, switch_prob: float,
                 mix_prob: float) -> Callable:
  """loss_fn(params, batch {"cube", "label"}, rng) -> (loss, logits), float32."""
  if label_type not in LABEL_TYPES:
    raise ValueError(f"label_type must be one of {LABEL_TYPES}, got {label_type!r}")

  def loss_fn(params, batch, rng):
    k_mix, k_drop = jax.random.split(rng)
    cube = batch["cube"]
    if label_type == "single":
      target = smooth_one_hot(batch["label"], num_classes, smoothing)
      cube, target = mix_batch(k_mix, cube, target, mixup_alpha=mixup_alpha,
                               cutmix_alpha=cutmix_alpha, switch_prob=switch_prob, prob=mix_prob)
      logits = model.apply({"params": params}, cube, train=True, rngs={"dropout": k_drop})
      return soft_cross_entropy(logits, target), logits
    logits = model.apply({"params": params}, cube, train=True, rngs={"dropout": k_drop})
    return multilabel_soft_margin(logits, batch["label"].astype(jnp.float32)), logits

  return loss_fn


def make_train_step(model: nn.Module, tx: optax.GradientTransformationExtraArgs,
                    schedule: optax.Schedule, *, rules: Any = (), **loss_kwargs) -> Callable:
  """train_step(state, batch {"cube", "label"}, rng) -> (state, metrics): one AdamW step on the
  official fine-tuning loss; metrics as the pretraining step's (loss, norms, lr, skip counters)."""
  grad_fn = jax.value_and_grad(make_loss_fn(model, **loss_kwargs), has_aux=True)

  def train_step(state: TrainState, batch: dict[str, jax.Array], rng: jax.Array):
    with nn.logical_axis_rules(rules):
      (loss, _), grads = grad_fn(state.params, batch, jax.random.fold_in(rng, state.step))
      return apply_gradients(state, grads, loss, tx, schedule)

  return train_step


def make_predict_fn(model: nn.Module, *, rules: Any = ()) -> Callable:
  """predict(params, cube) -> logits [B, K] float32 (eval mode: no dropout, no drop path)."""

  def predict(params, cube):
    with nn.logical_axis_rules(rules):
      return model.apply({"params": params}, cube, train=False)

  return predict


# --------------------------------------------------------------------------------- task
class ClassifyTask(base.Task):
  """Fine-tuning a classifier; predict: logits [B, K] in eval mode (`predict_host`: any N)."""

  def check_config(self, config, spec) -> None:
    base.require(config, "finetune", "a classifier",
                 "a fine-tuning config: configs/finetune/")
    if config.data.label_type not in LABEL_TYPES:
      raise ValueError(f"config.data.label_type must be one of {LABEL_TYPES}, got "
                       f"{config.data.label_type!r}")

  def batch_spec(self, config, spec, cube: jax.ShapeDtypeStruct) -> base.Batch:
    """label: [B] int32 (single-label) or [B, K] float32 (multi-label)."""
    b = cube.shape[0]
    label = (jax.ShapeDtypeStruct((b,), jnp.int32) if config.data.label_type == "single"
             else jax.ShapeDtypeStruct((b, spec.num_classes), jnp.float32))
    return {"cube": cube, "label": label}

  def make_step(self, config, model, tx, schedule, rules) -> Callable:
    f = config.finetune
    return make_train_step(
        model, tx, schedule, rules=rules, label_type=config.data.label_type,
        num_classes=model.spec.num_classes, smoothing=f.smoothing, mixup_alpha=f.mixup,
        cutmix_alpha=f.cutmix, switch_prob=f.switch_prob, mix_prob=f.mix_prob)

  def make_predict(self, config, model, rules) -> tuple[Callable, tuple[str, ...]]:
    return make_predict_fn(model, rules=rules), ("cube",)
