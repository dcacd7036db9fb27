"""The optimizer recipe (schedule, weight-decay mask, clipping, non-finite guard) and the pure
train step (gradient accumulation, metrics, bf16 compute)."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from spectralgpt_jax.train import model_state, optim, state as state_lib
from spectralgpt_jax.train.tasks import mae as mae_task

import train_util


def _optim_cfg(**kw):
  c = dict(lr=1e-3, min_lr=1e-5, warmup_steps=5, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.05,
           exclude_pos_and_mask=False, clip_grad_norm=0.0)
  c.update(kw)
  return ml_collections.ConfigDict(c)


def test_schedule_is_the_official_warmup_half_cosine():
  lr, warm, total, min_lr = 3.2e-3, 10, 100, 1e-5
  sched = optim.warmup_cosine(lr, warm, total, min_lr)
  for it in (0, 1, 5, 9, 10, 11, 50, 99, 100, 150):
    # util/lr_sched.adjust_learning_rate, with iterations in place of fractional epochs
    want = lr * it / warm if it < warm else min_lr + (lr - min_lr) * 0.5 * (
        1 + math.cos(math.pi * min(it - warm, total - warm) / (total - warm)))
    assert float(sched(it)) == pytest.approx(want, rel=1e-5, abs=1e-9), it


@pytest.mark.parametrize("scan", [True, False])
def test_weight_decay_mask_follows_the_official_recipe(scan):
  config = train_util.tiny(**{"model.scan": scan})
  model = model_state.build_model(config.model)
  params = jax.eval_shape(lambda r: state_lib.init_state(
      model, optax.identity(), r).params, jax.random.key(0))
  flat = lambda t: {"/".join(str(k.key) for k in p): v
                    for p, v in jax.tree_util.tree_flatten_with_path(t)[0]}
  mask = flat(optim.decay_mask(params))
  layer = "blocks/layers" if scan else "blocks/layers_0"
  for name in ("pos_embed_spatial", "pos_embed_temporal", "mask_token",
               "decoder_pos_embed_spatial", f"{layer}/attn/q/kernel", "patch_embed/proj/kernel"):
    assert mask[name], name
  for name in (f"{layer}/attn/q/bias", f"{layer}/norm1/scale", f"{layer}/norm1/bias",
               "norm/scale", "decoder_pred/bias", "patch_embed/proj/bias"):
    assert not mask[name], name
  excluded = flat(optim.decay_mask(params, exclude_pos_and_mask=True))
  assert not excluded["pos_embed_spatial"] and not excluded["mask_token"]
  assert excluded[f"{layer}/attn/q/kernel"]


def test_guard_skips_nonfinite_updates_and_counts_them():
  tx, _ = optim.make_optimizer(_optim_cfg(warmup_steps=0), total_steps=10)
  params = {"w": jnp.ones((3, 4)), "b": jnp.zeros(4)}
  state = tx.init(params)
  good = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
  bad = {"w": good["w"].at[0, 0].set(jnp.nan), "b": good["b"]}
  upd, s1 = tx.update(bad, state, params, loss=jnp.float32(1.0))
  assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree.leaves(upd))
  assert (int(s1.streak), int(s1.total)) == (1, 1)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s1.inner, state.inner))
  _, s2 = tx.update(good, s1, params, loss=jnp.float32(jnp.inf))  # finite grads, inf loss
  assert (int(s2.streak), int(s2.total)) == (2, 2)
  upd, s3 = tx.update(good, s2, params, loss=jnp.float32(1.0))
  assert (int(s3.streak), int(s3.total)) == (0, 2)
  assert float(jnp.abs(upd["w"]).max()) > 0


def test_clipping_scales_the_gradient_seen_by_adam():
  tx, _ = optim.make_optimizer(_optim_cfg(clip_grad_norm=0.01), total_steps=10)
  params = {"w": jnp.ones((3, 4))}
  _, s = tx.update({"w": jnp.full((3, 4), 10.0)}, tx.init(params), params, loss=jnp.float32(0))
  mu = s.inner[1][0].mu["w"]  # chain(clip, adamw): adam's first moment = (1 - b1) * clipped g
  assert float(optax.tree.norm(mu)) == pytest.approx(0.1 * 0.01, rel=1e-5)


def test_accumulation_averages_microbatches():
  config = train_util.tiny()
  model = model_state.build_model(config.model)
  tx, sched = optim.make_optimizer(config.optim, 10)
  state = jax.jit(lambda r: state_lib.init_state(model, tx, r))(jax.random.key(0))
  cube = jax.random.uniform(jax.random.key(3), (8, 12, 32, 32))
  rng = jax.random.key(7)
  step = jax.jit(mae_task.make_train_step(model, tx, sched, mask_ratio=0.75, accum_steps=2))
  _, m = step(state, {"cube": cube}, rng)
  loss_fn = mae_task.make_loss_fn(model, mask_ratio=0.75)

  @jax.jit
  def manual(params):
    step_rng = jax.random.fold_in(rng, 0)  # state.step == 0
    out = [jax.value_and_grad(loss_fn, has_aux=True)(
        params, cube[i::2], jax.random.fold_in(step_rng, i)) for i in range(2)]
    loss = (out[0][0][0] + out[1][0][0]) / 2
    grads = jax.tree.map(lambda a, b: (a + b) / 2, out[0][1], out[1][1])
    return loss, optax.tree.norm(grads)

  loss, gnorm = manual(state.params)
  assert float(m["loss"]) == pytest.approx(float(loss), rel=1e-6)
  assert float(m["grad_norm"]) == pytest.approx(float(gnorm), rel=1e-5)
  want = {"loss", "loss_mse", "loss_spectral", "grad_norm", "param_norm", "update_norm", "lr",
          "skipped", "skipped_total", "skipped_streak"}
  assert set(m) == want and float(m["skipped"]) == 0
  assert float(m["lr"]) == pytest.approx(float(sched(0)))


def test_bf16_compute_keeps_f32_params_and_a_close_loss():
  losses = {}
  for dtype in ("float32", "bfloat16"):
    model = model_state.build_model(train_util.tiny(**{"model.dtype": dtype}).model)
    params = jax.jit(lambda r: state_lib.init_state(model, optax.identity(), r).params)(
        jax.random.key(0))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    loss_fn = jax.jit(mae_task.make_loss_fn(model, mask_ratio=0.75))
    cube = jax.random.uniform(jax.random.key(3), (4, 12, 32, 32))
    losses[dtype] = float(loss_fn(params, cube, jax.random.key(1))[0])
  assert np.isfinite(losses["bfloat16"])
  assert losses["bfloat16"] == pytest.approx(losses["float32"], rel=0.05)
