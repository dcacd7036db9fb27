"""AdamW with the official SpectralGPT recipe, its schedule, and a non-finite update guard.

Pretraining recipe (spec section 4): AdamW betas (0.9, 0.95), weight decay 0.05 on every
parameter with two or more dimensions (so position tables and the mask token *are* decayed;
biases and LayerNorm are not), lr = blr * effective_batch / 256, linear warmup then half-cycle
cosine to min_lr, updated every optimizer step, no clipping by default.
Fine-tuning recipe: betas (0.9, 0.999), position tables not decayed (exclude_pos_and_mask), and
layer-wise lr decay 0.75 with num_layers = depth + 1: patch embedding and position tables layer
0, block k layer k + 1, the rest (norm, head) num_layers; the update of layer i is scaled by
decay ** (num_layers - i).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any
Schedule = optax.Schedule

# Leaf names the "exclude_pos_and_mask" option keeps out of weight decay (as MAE's skip_list).
NO_DECAY_OPTION = ("pos_embed", "mask_token")


def warmup_cosine(peak: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0,
                  ) -> Schedule:
  """lr(step): peak * step / warmup for step < warmup, then min_lr + (peak - min_lr) *
  0.5 * (1 + cos(pi * (step - warmup) / (total - warmup))), constant min_lr after total."""

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    warm = peak * step / max(warmup_steps, 1)
    progress = jnp.clip((step - warmup_steps) / max(total_steps - warmup_steps, 1), 0.0, 1.0)
    cosine = min_lr + (peak - min_lr) * 0.5 * (1.0 + jnp.cos(math.pi * progress))
    return jnp.where(step < warmup_steps, warm, cosine)

  return schedule


@dataclasses.dataclass(frozen=True)
class ScheduleSettings:
  """Everything the learning-rate schedule reads (warmup_cosine's arguments); recorded in the
  checkpoint meta under "schedule" so a resumed run can tell when they changed."""

  lr: float
  min_lr: float
  warmup_steps: int
  total_steps: int

  @classmethod
  def from_config(cls, config) -> "ScheduleSettings":
    """From a training config: config.optim.{lr, min_lr, warmup_steps} and config.total_steps."""
    o = config.optim
    if o.lr is None or o.lr <= 0:
      raise ValueError(f"config.optim.lr must be > 0, got {o.lr}")
    return cls(float(o.lr), float(o.min_lr), int(o.warmup_steps), int(config.total_steps))

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ScheduleSettings":
    return cls(float(d["lr"]), float(d["min_lr"]), int(d["warmup_steps"]),
               int(d["total_steps"]))

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  def lr_at(self, step: int) -> float:
    """The learning rate of update `step` (host float; the same formula as warmup_cosine)."""
    return float(warmup_cosine(self.lr, self.warmup_steps, self.total_steps, self.min_lr)(step))

  def describe(self) -> str:
    return (f"lr {self.lr:.4g}, min_lr {self.min_lr:.4g}, warmup {self.warmup_steps} steps, "
            f"cosine to step {self.total_steps}")


def _ndim_per_layer(path: tuple, leaf) -> int:
  # A scanned stack stores its layers stacked on a leading axis (params[...]["layers"]); the
  # official 1-D rule applies to one layer's tensor, so that axis does not count.
  keys = [getattr(k, "key", None) for k in path]
  return leaf.ndim - (1 if "layers" in keys else 0)


def decay_mask(params: PyTree, exclude_pos_and_mask: bool = False) -> PyTree:
  """True where weight decay applies: >= 2 dims per layer (optionally not pos embeds/mask)."""

  def one(path, leaf):
    name = str(getattr(path[-1], "key", path[-1]))
    if exclude_pos_and_mask and any(n in name for n in NO_DECAY_OPTION):
      return False
    return _ndim_per_layer(path, leaf) >= 2

  return jax.tree_util.tree_map_with_path(one, params)


def layer_ids(params: PyTree, depth: int) -> PyTree:
  """Per leaf, the official layer id (int, or an int array [depth] for a scanned stack)."""

  def one(path, _):
    keys = [getattr(k, "key", str(k)) for k in path]
    top = keys[0]
    if top.startswith("pos_embed") or top == "patch_embed":
      return 0
    if top == "blocks":
      if "layers" in keys:  # scanned: the leading axis is the layer
        return jnp.arange(1, depth + 1)
      return int(keys[1].split("_")[-1]) + 1
    return depth + 1

  return jax.tree_util.tree_map_with_path(one, params)


def scale_by_layer_decay(decay: float, depth: int) -> optax.GradientTransformation:
  """Multiplies each update by decay ** (depth + 1 - layer id): the official param groups'
  lr_scale (it scales the AdamW step and its decoupled weight decay alike)."""

  def scales(params):
    def one(leaf, lid):
      s = jnp.asarray(decay, jnp.float32) ** (depth + 1 - jnp.asarray(lid, jnp.float32))
      return s.reshape(s.shape + (1,) * (leaf.ndim - s.ndim))
    return jax.tree.map(one, params, layer_ids(params, depth))

  def init(params):
    del params
    return optax.EmptyState()

  def update(updates, state, params=None):
    factors = scales(updates)
    return jax.tree.map(lambda u, f: (u * f).astype(u.dtype), updates, factors), state

  return optax.GradientTransformation(init, update)


class GuardState(NamedTuple):
  """Optimizer state behind the non-finite guard.

  Attributes:
    inner: state of the wrapped optimizer (unchanged by a skipped step).
    streak: int32, consecutive skipped (non-finite) steps up to now.
    total: int32, skipped steps since the start of training.
  """
  inner: Any
  streak: jax.Array
  total: jax.Array


def guard_nonfinite(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """Skips the whole update (zero updates, inner state kept) when the gradients or the `loss`
  extra argument are not finite, and counts it. The counters live in the optimizer state, so
  they are checkpointed with it. Unlike optax.apply_if_finite it never applies a bad update."""

  def init(params):
    zero = jnp.zeros([], jnp.int32)
    return GuardState(inner.init(params), zero, zero)

  def update(updates, state, params=None, *, loss=None, **_):
    finite = jnp.isfinite(optax.tree.norm(updates))
    if loss is not None:
      finite &= jnp.isfinite(loss)
    new_updates, new_inner = inner.update(updates, state.inner, params)
    new_updates = jax.tree.map(lambda u: jnp.where(finite, u, jnp.zeros_like(u)), new_updates)
    new_inner = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new_inner, state.inner)
    bad = (~finite).astype(jnp.int32)
    return new_updates, GuardState(new_inner, (state.streak + 1) * bad, state.total + bad)

  return optax.GradientTransformationExtraArgs(init, update)


def frozen_labels(params: PyTree, frozen: tuple[str, ...]) -> PyTree:
  """"frozen" for leaves under a top-level name in `frozen`, else "train" (multi_transform)."""
  return {k: jax.tree.map(lambda _, k=k: "frozen" if k in frozen else "train", v)
          for k, v in params.items()}


def make_optimizer(optim_cfg, total_steps: int, depth: int | None = None,
                   settings: ScheduleSettings | None = None,
                   frozen: tuple[str, ...] = (),
                   ) -> tuple[optax.GradientTransformationExtraArgs, Schedule]:
  """(tx, schedule) from `config.optim`; tx.update takes `loss=` for the guard.

  Fields: lr, min_lr, warmup_steps, b1, b2, eps, weight_decay, exclude_pos_and_mask,
  decay_all (weight decay on every parameter, as a plain torch AdamW; default False),
  clip_grad_norm (0 = off), layer_decay (absent or 0 = off; needs `depth`, the encoder's),
  schedule and its own fields (train/schedules.py). `settings`, if given, replaces lr, min_lr,
  warmup_steps and total_steps in the schedule (a resumed run keeping its original schedule).
  `frozen`: top-level parameter names that get zero updates and no optimizer state.
  """
  from spectralgpt_jax.train import schedules  # pylint: disable=g-import-not-at-top
  if settings is None:
    if optim_cfg.lr is None or optim_cfg.lr <= 0:
      raise ValueError(f"config.optim.lr must be > 0, got {optim_cfg.lr}")
    settings = ScheduleSettings(float(optim_cfg.lr), float(optim_cfg.min_lr),
                                int(optim_cfg.warmup_steps), int(total_steps))
  schedule = schedules.from_config(optim_cfg, settings)
  mask = lambda params: decay_mask(params, bool(optim_cfg.exclude_pos_and_mask))
  if optim_cfg.get("decay_all", False):
    mask = None
  parts = []
  if optim_cfg.clip_grad_norm and optim_cfg.clip_grad_norm > 0:
    parts.append(optax.clip_by_global_norm(float(optim_cfg.clip_grad_norm)))
  parts.append(optax.adamw(schedule, b1=float(optim_cfg.b1), b2=float(optim_cfg.b2),
                           eps=float(optim_cfg.eps), weight_decay=float(optim_cfg.weight_decay),
                           mask=mask))
  layer_decay = float(optim_cfg.get("layer_decay", 0.0) or 0.0)
  if layer_decay:
    if depth is None:
      raise ValueError("config.optim.layer_decay needs the model depth")
    parts.append(scale_by_layer_decay(layer_decay, depth))
  tx = optax.chain(*parts)
  if frozen:
    tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()},
                               lambda params: frozen_labels(params, tuple(frozen)))
  return guard_nonfinite(tx), schedule
