"""The model on the six real BigEarthNet-S2 patches: shapes, finiteness, and it learns."""

import jax
import numpy as np
import optax

import parity
from data_pipelines import bigearthnet, normalization, resample
from spectralgpt_jax import losses
from spectralgpt_jax.models import get_model
from spectralgpt_jax.models.patch_embed import patchify


def _real_cubes(example_dir) -> np.ndarray:
  """[6, 12, 128, 128] float32: 10 m grid, resized to 128 px, per-image per-band min-max."""
  folders = bigearthnet.list_bigearthnet_patches(example_dir)
  assert len(folders) == 6
  cubes = [resample.resize_cube(bigearthnet.read_bigearthnet_patch(f)[0], 128) for f in folders]
  return normalization.minmax(np.stack(cubes))


def test_mae_learns_on_real_patches(example_dir):
  x = _real_cubes(example_dir)
  assert x.shape == (6, 12, 128, 128) and np.isfinite(x).all()
  model = get_model("mae_vit_tiny_patch8_32", img_size=128)
  spec = model.spec
  params = parity.init_params(model, x[:1])
  tx = optax.adamw(1e-3, b2=0.95, weight_decay=0.05)
  opt_state = tx.init(params)
  target = patchify(x, spec.t_patch, spec.patch)

  @jax.jit
  def step(params, opt_state, key):
    def loss_fn(p):
      pred, aux = model.apply({"params": p}, x, mask_ratio=0.9, rngs={"masking": key})
      return losses.spectralgpt_loss(pred, target, aux["mask"], spec.grid)[0], pred
    (loss, pred), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, pred

  history = []
  for i in range(12):
    params, opt_state, loss, pred = step(params, opt_state, jax.random.key(i))
    history.append(float(loss))
  assert pred.shape == (6, 1024, 192) and np.isfinite(np.asarray(pred)).all()
  assert np.isfinite(history).all()
  assert np.mean(history[-3:]) < 0.7 * history[0], history
