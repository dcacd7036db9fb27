"""Helpers for the weights-in/out tests: real cubes, a briefly trained tiny model, and an orbax
checkpoint in the training layout (state {params, opt_state, step} + data_iter + meta), written
here so these tests do not depend on the training code."""

from __future__ import annotations

import pathlib

import flax.linen as nn
import grain
import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from data_pipelines import bigearthnet, normalization, resample
from spectralgpt_jax import losses
from spectralgpt_jax.models import get_model
from spectralgpt_jax.models.patch_embed import patchify
from spectralgpt_jax.models.shapes import param_shapes

TINY_MAE = "mae_vit_tiny_patch8_32"
TINY_VIT = "vit_tiny_patch8_32"
BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
NORMALIZATION = {"mode": "minmax", "eps": 1e-12, "units": "DN"}


def real_cubes(example_dir: pathlib.Path, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(raw DN [6, 12, size, size], min-max normalized) from the real BigEarthNet patches."""
  folders = bigearthnet.list_bigearthnet_patches(example_dir)
  raw = np.stack([resample.resize_cube(bigearthnet.read_bigearthnet_patch(f)[0], size)
                  for f in folders])
  return raw, normalization.minmax(raw, NORMALIZATION["eps"])


def init_params(model, x: np.ndarray, seed: int = 0) -> dict:
  rngs = {"params": jax.random.key(seed), "masking": jax.random.key(seed + 1)}
  kw = {"mask_ratio": 0.9} if model.spec.kind == "mae" else {}
  return nn.unbox(jax.jit(lambda: model.init(rngs, x[:1], **kw))())["params"]


def random_params(model, seed: int = 0, std: float = 0.05) -> dict:
  """Random normal values in the shapes of `model`'s params (eval_shape: no compile).

  Every leaf is random (positions, biases, norms too), which exercises all of the mapping."""
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda a: (rng.standard_normal(a.shape, np.float32) * std),
                      param_shapes(model))


def train_briefly(model, params: dict, x: np.ndarray, steps: int = 3, lr: float = 1e-2):
  """A few AdamW steps of the SpectralGPT loss (MAE) or a dummy logit loss (ViT)."""
  tx = optax.adamw(lr)
  opt = tx.init(params)
  spec = model.spec

  @jax.jit
  def step(p, o, key):
    def loss_fn(p):
      if spec.kind == "mae":
        pred, aux = model.apply({"params": p}, x, mask_ratio=0.75, rngs={"masking": key})
        return losses.spectralgpt_loss(pred, patchify(x, spec.t_patch, spec.patch),
                                       aux["mask"], spec.grid)[0]
      return (model.apply({"params": p}, x) ** 2).mean()
    loss, g = jax.value_and_grad(loss_fn)(p)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o, loss

  for i in range(steps):
    params, opt, _ = step(params, opt, jax.random.key(i))
  return params, opt


def shard(tree):
  """Places a pytree on an 8-device CPU mesh (FSDP-like on the leading divisible axis)."""
  mesh = Mesh(np.array(jax.devices()), ("fsdp",))
  n = len(jax.devices())

  def spec(a):
    for ax, dim in enumerate(np.shape(a)):
      if dim % n == 0:
        return P(*([None] * ax), "fsdp")
    return P()
  return jax.tree.map(lambda a: jax.device_put(a, NamedSharding(mesh, spec(a))), tree)


def write_training_checkpoint(workdir: pathlib.Path, params: dict, *, model: dict,
                              step: int = 3, opt_state=None, config: dict | None = None,
                              bands=BANDS, normalization=NORMALIZATION) -> pathlib.Path:
  """<workdir>/checkpoints/<step>/{state, data_iter, meta} as the training loop writes it."""
  state = {"params": params, "step": np.asarray(step, np.int32)}
  if opt_state is not None:
    state["opt_state"] = opt_state
  it = iter(grain.MapDataset.range(8).to_iter_dataset())
  next(it)
  meta = {"config": config or {"optim": {"lr": 1e-2}}, "model": model, "bands": list(bands),
          "normalization": normalization}
  root = (workdir / "checkpoints").resolve()
  with ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(create=True)) as mngr:
    mngr.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data_iter=grain.checkpoint.CheckpointSave(it),
        meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()
  return root / str(step)


def build(name: str, **kwargs):
  return get_model(name, **kwargs)
