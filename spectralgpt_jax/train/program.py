"""The compiled side of a run: model, optimizer, shardings and the jitted train step for a mesh.

One program type serves every objective, chosen by the model's kind: pretraining an MAE
(masked reconstruction, batch {"cube"}), fine-tuning a classifier (the official recipe of
train/classify.py, batch {"cube", "label"}) and dense prediction (train/segment.py:
segmentation {"cube", "mask"}, change detection {"cube", "cube2", "mask"}); the loop around
them is the same.

`build_program(config, mesh)` needs no data, checkpoint or device memory, so the same code
serves the training loop (a mesh of this host's devices) and ahead-of-time compilation for
another machine (a mesh of a TPU topology's or a GPU target's devices, built on a CPU host):
implementations of the model's products are chosen from `mesh`'s devices (kernels.select),
never from the host process.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import numpy as np
import optax
from flax import linen as nn
from jax.sharding import Mesh, NamedSharding

from spectralgpt_jax.kernels import select
from spectralgpt_jax.models import ops as ops_lib, shapes
from spectralgpt_jax.models.mae import token_grid
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax.sharding import rules as rules_lib
from spectralgpt_jax.train import build, classify, optim, segment, step as step_lib
from spectralgpt_jax.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class TrainProgram:
  """Everything the loop jits, with the shapes and shardings it runs on.

  Attributes:
    model: the Flax MAE or classifier (with the chosen `ops`).
    tx, schedule: optimizer and learning-rate schedule.
    mesh, rules: device mesh and logical sharding rules.
    abstract: TrainState of ShapeDtypeStructs carrying their shardings.
    shardings: TrainState of NamedShardings.
    cube_shape: global batch [B, C, S, S] (or [B, T, C, S, S]); cube_sharding its sharding.
    label_shape: global labels, [B] int32 (single-label) or [B, K] float32 (multi-label);
      () for pretraining (no labels).
    train_step: jitted `(state, batch, rng) -> (state, metrics)`, state donated.
    predict: jitted; MAE: `(params, cube, rng) -> (cube, pred, mask)` of the first
      `config.log.panel_examples` rows (reconstruction panels); classifier:
      `(params, cube) -> logits [B, K]` (eval mode); dense: `(params, cube[, cube2]) ->
      probabilities [B, K, H, W]`.
    dense_inputs: dense kinds: the extra batch keys {"cube2"?, "mask"} -> (shape, dtype).
  """

  model: nn.Module
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  mesh: Mesh
  rules: Any
  abstract: TrainState
  shardings: TrainState
  cube_shape: tuple[int, ...]
  cube_sharding: NamedSharding
  train_step: Callable
  predict: Callable
  label_shape: tuple[int, ...] = ()
  dense_inputs: tuple[tuple[str, tuple[int, ...], Any], ...] = ()

  @property
  def ops(self) -> ops_lib.Ops:
    return self.model.ops

  @property
  def kind(self) -> str:
    return self.model.spec.kind

  @property
  def grid(self) -> tuple[int, int, int]:
    return token_grid(self.model.spec, self.cube_shape)

  def batch_shardings(self) -> dict[str, NamedSharding]:
    out = {"cube": self.cube_sharding}
    if self.label_shape:
      out["label"] = mesh_lib.batch_sharding(self.mesh, len(self.label_shape))
    for key, shape, _ in self.dense_inputs:
      out[key] = mesh_lib.batch_sharding(self.mesh, len(shape))
    return out

  def abstract_batch(self) -> dict[str, jax.ShapeDtypeStruct]:
    out = {"cube": jax.ShapeDtypeStruct(self.cube_shape, np.float32,
                                        sharding=self.cube_sharding)}
    if self.label_shape:
      dtype = np.int32 if len(self.label_shape) == 1 else np.float32
      out["label"] = jax.ShapeDtypeStruct(self.label_shape, dtype,
                                          sharding=self.batch_shardings()["label"])
    for key, shape, dtype in self.dense_inputs:
      out[key] = jax.ShapeDtypeStruct(shape, dtype, sharding=self.batch_shardings()[key])
    return out

  def predict_dense(self, params, *cubes: np.ndarray) -> np.ndarray:
    """Dense model: class probabilities [N, K, H, W] of host tiles [N, C, S, S] per date, N of
    any size (padded to the mesh's batch split for the call); single-process."""
    n, split = cubes[0].shape[0], mesh_lib.batch_divisor(self.mesh)
    padded = [np.concatenate([c, np.repeat(c[-1:], -n % split, axis=0)]).astype(np.float32)
              for c in cubes]
    with jax.set_mesh(self.mesh):
      out = self.predict(params, *[jax.device_put(c, self.cube_sharding) for c in padded])
    return np.asarray(out)[:n]

  def classify(self, params, cube: np.ndarray) -> np.ndarray:
    """Classifier logits [N, K] of a host batch [N, ...] of any size N (padded to the mesh's
    batch split for the call, the padding dropped from the result); single-process."""
    cube = np.asarray(cube, np.float32)
    n, split = cube.shape[0], mesh_lib.batch_divisor(self.mesh)
    padded = np.concatenate([cube, np.repeat(cube[-1:], -n % split, axis=0)])
    with jax.set_mesh(self.mesh):
      logits = self.predict(params, jax.device_put(padded, self.cube_sharding))
    return np.asarray(logits)[:n]

  def lower(self) -> jax.stages.Lowered:
    """The train step lowered for abstract state, batch and key (nothing is allocated)."""
    rng = jax.eval_shape(lambda: jax.random.key(0))
    with jax.set_mesh(self.mesh):
      return self.train_step.lower(self.abstract, self.abstract_batch(), rng)


def check_batch(config, mesh: Mesh) -> None:
  """The global batch must split evenly over data x fsdp devices and accumulation steps."""
  split = mesh_lib.batch_divisor(mesh) * config.optim.accum_steps
  if config.batch_size % split:
    raise ValueError(f"config.batch_size {config.batch_size} must be divisible by the batch "
                     f"split (mesh data x fsdp = {mesh_lib.batch_divisor(mesh)}) x "
                     f"config.optim.accum_steps ({config.optim.accum_steps})")
  if config.data.batch_size != config.batch_size:
    raise ValueError(f"config.data.batch_size ({config.data.batch_size}) != config.batch_size "
                     f"({config.batch_size}); set only config.batch_size")


def build_program(config, mesh: Mesh,
                  schedule_settings: optim.ScheduleSettings | None = None) -> TrainProgram:
  """Model, optimizer, shardings and jitted functions of `config` on `mesh`.

  `schedule_settings`, if given, replaces the config's learning-rate schedule (a resumed run
  keeping the schedule its checkpoint recorded)."""
  check_batch(config, mesh)
  rules = rules_lib.get_rules(config.sharding.rules, tuple(config.sharding.overrides))
  spec = build.build_model(config.model).spec
  cube_shape = shapes.abstract_input(spec, config.batch_size, config.data.image_size).shape
  grid = token_grid(spec, cube_shape)  # fails early, naming the shape, if the model can't take it
  ops = select.ops_from_config(config.get("kernels"), mesh.devices.flat,
                               max_tokens=grid[0] * grid[1] * grid[2])
  model = build.build_model(config.model, ops=ops)
  frozen = segment.ENCODER_PARAMS if config.model.get("freeze_encoder", False) else ()
  tx, schedule = optim.make_optimizer(config.optim, int(config.total_steps), depth=spec.depth,
                                      settings=schedule_settings, frozen=frozen)
  abstract, shardings = build.state_shardings(model, tx, mesh, rules)
  cube_sharding = mesh_lib.batch_sharding(mesh, len(cube_shape))
  repl = mesh_lib.replicated(mesh)
  common = dict(model=model, tx=tx, schedule=schedule, mesh=mesh, rules=rules, abstract=abstract,
                shardings=shardings, cube_shape=cube_shape, cube_sharding=cube_sharding)

  if spec.kind == "vit":
    if "finetune" not in config or config.optim.accum_steps != 1:
      raise ValueError(f"config.model.name {config.model.name!r} is a classifier: fine-tuning "
                       "needs a fine-tuning config (configs/finetune/, config.finetune) and "
                       "config.optim.accum_steps = 1")
    label_type = config.data.label_type
    label_shape = ((config.batch_size,) if label_type == "single"
                   else (config.batch_size, spec.num_classes))
    f = config.finetune
    step_fn = classify.make_train_step(
        model, tx, schedule, rules=rules, label_type=label_type, num_classes=spec.num_classes,
        smoothing=f.smoothing, mixup_alpha=f.mixup, cutmix_alpha=f.cutmix,
        switch_prob=f.switch_prob, mix_prob=f.mix_prob)
    batch_sh = {"cube": cube_sharding,
                "label": mesh_lib.batch_sharding(mesh, len(label_shape))}
    train_step = jax.jit(step_fn, in_shardings=(shardings, batch_sh, repl),
                         out_shardings=(shardings, repl), donate_argnums=0)
    predict = jax.jit(classify.make_predict_fn(model, rules=rules),
                      in_shardings=(shardings.params, cube_sharding), out_shardings=repl)
    return TrainProgram(**common, train_step=train_step, predict=predict,
                        label_shape=label_shape)

  if spec.kind in ("seg", "change"):
    return _dense_program(config, common, mesh, spec)

  step_fn = step_lib.make_train_step(
      model, tx, schedule, mask_ratio=config.masking.ratio, accum_steps=config.optim.accum_steps,
      rules=rules, mse_weight=config.loss.mse_weight, spectral_weight=config.loss.spectral_weight,
      norm_pix=config.loss.norm_pix)
  train_step = jax.jit(step_fn, in_shardings=(shardings, {"cube": cube_sharding}, repl),
                       out_shardings=(shardings, repl), donate_argnums=0)
  n_panel = min(int(config.log.panel_examples), config.batch_size)
  predict_fn = step_lib.make_predict_fn(model, mask_ratio=config.masking.ratio, rules=rules)
  first_rows = lambda p, c, r: jax.tree.map(lambda a: a[:n_panel], (c, *predict_fn(p, c, r)))
  predict = jax.jit(first_rows, in_shardings=(shardings.params, cube_sharding, repl),
                    out_shardings=repl)
  return TrainProgram(**common, train_step=train_step, predict=predict)


def _dense_program(config, common: dict, mesh: Mesh, spec) -> TrainProgram:
  """The segmentation / change-detection program (train/segment.py)."""
  if "dense" not in config or config.optim.accum_steps != 1:
    raise ValueError(f"config.model.name {config.model.name!r} is a dense model: it needs a "
                     "dense config (configs/eval/oscd.py, segmunich.py, sen1floods11.py: "
                     "config.dense) and config.optim.accum_steps = 1")
  weights = tuple(float(w) for w in config.dense.class_weights) or None
  if config.dense.get("oscd_class_weights") and weights is None:
    raise ValueError("config.dense.oscd_class_weights is set but config.dense.class_weights is "
                     "empty: the OSCD evaluator fills it from the training change fraction; "
                     "for a plain `train`, set --config.dense.class_weights")
  if weights is not None and len(weights) != spec.num_classes:
    raise ValueError(f"config.dense.class_weights has {len(weights)} values for "
                     f"{spec.num_classes} classes")
  model, rules, shardings = common["model"], common["rules"], common["shardings"]
  cube_shape, cube_sharding = common["cube_shape"], common["cube_sharding"]
  repl = mesh_lib.replicated(mesh)
  mask_shape = (cube_shape[0], *cube_shape[-2:])
  dense_inputs = ((("cube2", cube_shape, np.float32),) if spec.kind == "change" else ()) + (
      ("mask", mask_shape, np.int32),)
  batch_sh = {"cube": cube_sharding, **{k: mesh_lib.batch_sharding(mesh, len(shape))
                                        for k, shape, _ in dense_inputs}}
  step_fn = segment.make_train_step(model, common["tx"], common["schedule"], rules=rules,
                                    class_weights=weights)
  train_step = jax.jit(step_fn, in_shardings=(shardings, batch_sh, repl),
                       out_shardings=(shardings, repl), donate_argnums=0)
  n_dates = 2 if spec.kind == "change" else 1
  predict = jax.jit(segment.make_predict_fn(model, rules=rules),
                    in_shardings=(shardings.params,) + (cube_sharding,) * n_dates,
                    out_shardings=repl)
  return TrainProgram(**common, train_step=train_step, predict=predict,
                      dense_inputs=dense_inputs)


def lower_train_step(config, mesh: Mesh) -> jax.stages.Lowered:
  """The train step of `config` lowered for `mesh` (any platform; see the module docstring)."""
  return build_program(config, mesh).lower()
