"""Pretraining an MAE: masked reconstruction of batch {"cube"} (task `MaeTask`, kind "mae").

The pure step: masking noise from a per-step folded key, loss, gradients, AdamW.
`make_train_step(...)` returns `train_step(state, batch, rng) -> (state, metrics)`; it reads no
config and has no side effects, so the program jits it once with shardings and donation.
Gradient accumulation scans over microbatches inside the step (one compiled program, no Python
loop). `MaeTask` reads the config (masking, loss, log.panel_examples) and builds them.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from spectralgpt_jax import losses
from spectralgpt_jax.models.mae import band_plan, token_grid
from spectralgpt_jax.models.patch_embed import fold_dates, patchify
from spectralgpt_jax.sharding import axis_names as ax
from spectralgpt_jax.train import band_set
from spectralgpt_jax.train.state import TrainState, apply_gradients
from spectralgpt_jax.train.tasks import base

Metrics = dict[str, jax.Array]


def make_loss_fn(model: nn.Module, *, mask_ratio: float, mse_weight: float = 1.0,
                 spectral_weight: float = 1.0, norm_pix: bool = False,
                 band_kwargs: dict | None = None) -> Callable:
  """loss_fn(params, cube [B, C, H, W], rng) -> (loss, (terms, pred, mask)), float32.

  `band_kwargs`: wavelengths / fwhm / drop_groups of a band set (train/band_set.py); the
  tokens of dropped groups count as masked but carry no loss, in neither term (aux["valid"])."""
  spec = model.spec
  band_kwargs = dict(band_kwargs or {})
  plan = band_plan(spec, band_kwargs.get("wavelengths"), band_kwargs.get("fwhm"))

  def loss_fn(params, cube, rng):
    pred, aux = model.apply({"params": params}, cube, mask_ratio=mask_ratio,
                            rngs={"masking": rng}, **band_kwargs)
    grid = token_grid(spec, cube.shape, plan)
    target = patchify(fold_dates(cube), spec.t_patch, spec.patch)
    loss, terms = losses.spectralgpt_loss(
        pred, target, aux["mask"], grid, mse_weight=mse_weight, spectral_weight=spectral_weight,
        norm_pix=norm_pix, groups_per_date=spec.spectral_groups if spec.num_dates > 1 else None,
        valid=aux.get("valid"))
    return loss, (terms, pred, aux["mask"])

  return loss_fn


def _microbatches(cube: jax.Array, accum_steps: int) -> jax.Array:
  """[A*M, ...] -> [A, M, ...] with microbatch a = rows {m*A + a}: every device keeps its own
  rows (the batch axis stays split over the data axes, no communication)."""
  m = cube.shape[0] // accum_steps
  x = cube.reshape(m, accum_steps, *cube.shape[1:]).swapaxes(0, 1)
  return nn.with_logical_constraint(x, (None, ax.ACT_BATCH) + (None,) * (cube.ndim - 1))


def make_train_step(model: nn.Module, tx: optax.GradientTransformationExtraArgs,
                    schedule: optax.Schedule, *, mask_ratio: float, accum_steps: int = 1,
                    rules: Any = (), **loss_kwargs) -> Callable:
  """The step. batch {"cube": float32 [B, C, H, W]} (B = global batch); rng: the run's key.

  Metrics (float32 scalars): loss, loss_mse, loss_spectral, grad_norm, param_norm,
  update_norm, lr, skipped (1 if this update was skipped as non-finite), skipped_total,
  skipped_streak.
  """
  loss_fn = make_loss_fn(model, mask_ratio=mask_ratio, **loss_kwargs)
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def gradients(params, cube, rng):
    if accum_steps == 1:
      (loss, (terms, _, _)), grads = grad_fn(params, cube, jax.random.fold_in(rng, 0))
      return loss, terms, grads
    if cube.shape[0] % accum_steps:
      raise ValueError(f"batch {cube.shape[0]} not divisible by accum_steps {accum_steps}")

    def body(carry, xs):
      micro, i = xs
      (loss, (terms, _, _)), grads = grad_fn(params, micro, jax.random.fold_in(rng, i))
      return jax.tree.map(jnp.add, carry, (loss, terms, grads)), None

    scalar = lambda: jnp.zeros([], jnp.float32)
    zeros = (scalar(), {"loss_mse": scalar(), "loss_spectral": scalar()},
             jax.tree.map(jnp.zeros_like, params))
    xs = (_microbatches(cube, accum_steps), jnp.arange(accum_steps))
    total, _ = jax.lax.scan(body, zeros, xs)
    return jax.tree.map(lambda t: t / accum_steps, total)

  def train_step(state: TrainState, batch: dict[str, jax.Array],
                 rng: jax.Array) -> tuple[TrainState, Metrics]:
    with nn.logical_axis_rules(rules):
      step_rng = jax.random.fold_in(rng, state.step)
      loss, terms, grads = gradients(state.params, batch["cube"], step_rng)
      return apply_gradients(state, grads, loss, tx, schedule, **terms)

  return train_step


def make_predict_fn(model: nn.Module, *, mask_ratio: float, rules: Any = (),
                    band_kwargs: dict | None = None) -> Callable:
  """predict(params, cube, rng) -> (pred [B, L, P], mask [B, L]) for reconstruction panels."""
  band_kwargs = dict(band_kwargs or {})

  def predict(params, cube, rng):
    with nn.logical_axis_rules(rules):
      pred, aux = model.apply({"params": params}, cube, mask_ratio=mask_ratio,
                              rngs={"masking": rng}, **band_kwargs)
    return pred, aux["mask"]

  return predict


def _band_kwargs(config) -> dict:
  bands = band_set.from_config(config)
  return {} if bands is None else bands.model_kwargs


class MaeTask(base.Task):
  """Masked reconstruction (config.masking, config.loss); predict: reconstruction panels."""

  draws_panels = True

  def check_config(self, config, spec) -> None:
    for block in ("masking", "loss"):
      base.require(config, block, "an MAE", "a pretraining config: configs/pretrain/",
                   accum=True)

  def batch_spec(self, config, spec, cube: jax.ShapeDtypeStruct) -> base.Batch:
    return {"cube": cube}

  def make_step(self, config, model, tx, schedule, rules) -> Callable:
    return make_train_step(
        model, tx, schedule, mask_ratio=config.masking.ratio,
        accum_steps=config.optim.accum_steps, rules=rules, mse_weight=config.loss.mse_weight,
        spectral_weight=config.loss.spectral_weight, norm_pix=config.loss.norm_pix,
        band_kwargs=_band_kwargs(config))

  def make_predict(self, config, model, rules) -> tuple[Callable, tuple[str, ...]]:
    """`(params, cube, rng) -> (cube, pred, mask)` of the first `config.log.panel_examples`
    rows (reconstruction panels)."""
    n_panel = min(int(config.log.panel_examples), config.batch_size)
    predict_fn = make_predict_fn(model, mask_ratio=config.masking.ratio, rules=rules,
                                 band_kwargs=_band_kwargs(config))
    first_rows = lambda p, c, r: jax.tree.map(lambda a: a[:n_panel], (c, *predict_fn(p, c, r)))
    return first_rows, ("cube", base.RNG)

  def predict_host(self, program, params, cube, rng) -> tuple:
    """(cube, pred, mask) as NumPy of the first panel rows of a global batch `cube` (already
    on the mesh); a collective: every process calls it."""
    with jax.set_mesh(program.mesh):
      out = program.predict(params, cube, rng)
    return jax.device_get(out)
