"""The task table: every model kind trains through a task with the same methods; one program
type builds each kind's batch, step and predict from it; unknown kinds and missing config
blocks are refused by name."""

import inspect

import jax
import numpy as np
import pytest

import train_util
from configs import common
from configs.finetune import tiny_bigearthnet
from spectralgpt_jax.models import variants
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax.train import program as program_lib, tasks
from spectralgpt_jax.train.tasks import base

METHODS = ("check_config", "batch_spec", "make_step", "make_predict", "predict_host",
           "frozen_params")


def test_every_model_kind_maps_to_a_task_with_the_fixed_methods():
  assert set(tasks.TASKS) == set(variants.KINDS)
  for kind in variants.KINDS:
    task = tasks.task_for(kind)
    assert isinstance(task, base.Task) and not inspect.isabstract(type(task))
    for name in METHODS:
      assert callable(getattr(task, name)), (kind, name)
  with pytest.raises(ValueError, match=r"kind 'depth'.*known kinds: \['change', 'mae'"):
    tasks.task_for("depth")


def _dense(model):
  c = common.dense_config(model=model, recipe="segmunich", source="oscd", paths="unused",
                          num_examples=32, batch_size=8, epochs=1, image_size=32)
  c.model.update(pyramid_channels=(32, 32, 64, 64), head_channels=32, pyramid_groups=8,
                 head_groups=8)
  return c


def _classifier(label_type):
  c = tiny_bigearthnet.get_config()
  c.data.label_type = label_type
  return c


# kind, config, expected batch {key: (shape, dtype)} (B = 8, 12 bands of 32 px), predict inputs
CASES = [
    ("mae", lambda: train_util.tiny(**{"batch_size": 8, "data.batch_size": 8}),
     {"cube": ((8, 12, 32, 32), np.float32)}, 3),
    ("vit", lambda: _classifier("multi"), {"cube": ((8, 12, 32, 32), np.float32),
                                            "label": ((8, 19), np.float32)}, 2),
    ("vit", lambda: _classifier("single"), {"cube": ((8, 12, 32, 32), np.float32),
                                             "label": ((8,), np.int32)}, 2),
    ("seg", lambda: _dense("seg_vit_tiny_patch8_32"), {"cube": ((8, 12, 32, 32), np.float32),
                                                       "mask": ((8, 32, 32), np.int32)}, 2),
    ("change", lambda: _dense("cd_vit_tiny_patch8_32"), {
        "cube": ((8, 12, 32, 32), np.float32), "cube2": ((8, 12, 32, 32), np.float32),
        "mask": ((8, 32, 32), np.int32)}, 3),
]


@pytest.mark.parametrize("kind,make_config,batch,n_predict_args", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_one_program_type_builds_each_kind_from_its_task(kind, make_config, batch,
                                                          n_predict_args):
  config = make_config()
  mesh = mesh_lib.make_mesh(config.mesh)
  prog = program_lib.build_program(config, mesh)
  assert prog.kind == kind and prog.task is tasks.TASKS[kind]
  abstract = prog.abstract_batch()
  assert {k: (a.shape, np.dtype(a.dtype)) for k, a in abstract.items()} == batch
  for key, a in abstract.items():
    assert a.sharding == mesh_lib.batch_sharding(mesh, len(a.shape)), key
  assert prog.cube_shape == batch["cube"][0] and prog.cube_sharding == abstract["cube"].sharding
  # The jitted predict takes params and the task's inputs (cubes, the MAE's key).
  args = (prog.abstract.params,) + tuple(
      jax.eval_shape(lambda: jax.random.key(0)) if name == base.RNG else abstract[name]
      for name in prog.task.make_predict(config, prog.model, prog.rules)[1])
  assert len(args) == n_predict_args
  with jax.set_mesh(mesh):
    out = jax.eval_shape(prog.predict, *args)
  if kind == "vit":
    assert out.shape == (8, 19)
  elif kind in ("seg", "change"):
    assert out.shape == (8, 2 if kind == "change" else prog.model.spec.num_classes, 32, 32)


def test_each_task_refuses_a_config_without_its_block():
  mesh = mesh_lib.make_mesh({"data": 1, "fsdp": -1, "tensor": 1}, jax.devices()[:1])
  mae = train_util.tiny()
  del mae["masking"]
  with pytest.raises(ValueError, match="is an MAE: it needs config.masking"):
    program_lib.build_program(mae, mesh)
  ft = _classifier("multi")
  ft.optim.accum_steps = 2
  with pytest.raises(ValueError, match="is a classifier.*accum_steps = 1"):
    program_lib.build_program(ft, mesh)
  ft = _classifier("sparse")
  with pytest.raises(ValueError, match="label_type must be one of"):
    program_lib.build_program(ft, mesh)
  dense = _dense("seg_vit_tiny_patch8_32")
  del dense["dense"]
  with pytest.raises(ValueError, match="is a dense model: it needs config.dense"):
    program_lib.build_program(dense, mesh)
