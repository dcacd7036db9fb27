"""Mesh and rule presets on 8 simulated CPU devices.

Each preset (dp, fsdp, fsdp_tp) trains the tiny model for two steps from the same parameters
and batches as one device and must agree: losses and gradient norms within 1e-5 relative,
every parameter within 1e-5 absolute. Exception: the attention key biases, whose gradient is
exactly zero in exact arithmetic (softmax ignores a shift shared by all keys), so it is float32
noise and AdamW's early updates, lr * sign(g), move them by +-lr at random under any reduction
order.
Every parameter and its Adam moments carry exactly the sharding the preset prescribes.
"""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from spectralgpt_jax.sharding import axis_names as ax
from spectralgpt_jax.sharding import mesh as mesh_lib
from spectralgpt_jax.sharding import partition, rules as rules_lib
from data_pipelines import pipeline as data_lib
from spectralgpt_jax.train import model_state, optim, state as state_lib
from spectralgpt_jax.train.tasks import mae as mae_task

import train_util

STEPS = 2


def test_mesh_shape_fill_and_errors():
  assert mesh_lib.resolve_shape({"data": 1, "fsdp": -1, "tensor": 2}, 8) == (1, 4, 2)
  with pytest.raises(ValueError, match="at most one"):
    mesh_lib.resolve_shape({"data": -1, "fsdp": -1, "tensor": 1}, 8)
  with pytest.raises(ValueError, match="needs 6 devices"):
    mesh_lib.resolve_shape({"data": 3, "fsdp": 2, "tensor": 1}, 8)
  mesh = mesh_lib.make_mesh({"data": 2, "fsdp": -1, "tensor": 1})
  assert dict(mesh.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
  assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)


def test_presets_cover_the_vocabulary_and_resolve_duplicates():
  names = set(ax.WEIGHT_AXES + ax.ACTIVATION_AXES)
  for preset, rules in rules_lib.RULE_PRESETS.items():
    assert {k for k, _ in rules} == names, preset
  mesh = mesh_lib.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
  fsdp = rules_lib.get_rules("fsdp")
  assert partition.resolve((ax.EMBED, ax.EMBED), fsdp, mesh) == P("fsdp", None)
  # A dimension the mesh axis does not divide stays replicated.
  assert partition.logical_to_spec((None, ax.TOKENS, ax.EMBED), (1, 4, 12), mesh, fsdp) == \
      P(None, None, None)
  with pytest.raises(KeyError, match="unknown preset"):
    rules_lib.get_rules("zero3")


# Expected PartitionSpecs (padded to the array rank) of representative parameters.
EXPECTED = {
    "dp": {},
    "fsdp": {
        "blocks/layers/attn/q/kernel": (None, "fsdp", None),
        "blocks/layers/attn/proj/kernel": (None, None, "fsdp"),
        "blocks/layers/attn/q/bias": (None, None),
        "blocks/layers/mlp/fc1/kernel": (None, "fsdp", None),
        "blocks/layers/mlp/fc2/kernel": (None, None, "fsdp"),
        "blocks/layers/norm1/scale": (None, "fsdp"),
        "pos_embed_spatial": (None, None, "fsdp"),
        "mask_token": (None, None, "fsdp"),
        "decoder_embed/kernel": ("fsdp", None),
        "patch_embed/proj/kernel": (None, "fsdp"),
        "decoder_pred/kernel": ("fsdp", None),
        "decoder_pred/bias": (None,),
    },
    "fsdp_tp": {
        "blocks/layers/attn/q/kernel": (None, "fsdp", "tensor"),
        "blocks/layers/attn/q/bias": (None, "tensor"),
        "blocks/layers/attn/proj/kernel": (None, "tensor", "fsdp"),
        "blocks/layers/mlp/fc1/kernel": (None, "fsdp", "tensor"),
        "blocks/layers/mlp/fc2/kernel": (None, "tensor", "fsdp"),
        "decoder_blocks/layers/mlp/fc1/kernel": (None, "fsdp", "tensor"),
        "pos_embed_spatial": (None, None, "fsdp"),
        "decoder_embed/kernel": ("fsdp", None),
    },
}
MESHES = {"dp": {"data": -1, "fsdp": 1, "tensor": 1},
          "fsdp": {"data": 1, "fsdp": -1, "tensor": 1},
          "fsdp_tp": {"data": 2, "fsdp": 2, "tensor": 2}}


def _flat(tree):
  return {"/".join(str(k.key) for k in p): v
          for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def setup():
  config = train_util.tiny()
  model = model_state.build_model(config.model)
  tx, schedule = optim.make_optimizer(config.optim, config.total_steps)
  params = jax.device_get(jax.jit(lambda r: state_lib.init_state(model, tx, r).params)(
      jax.random.key(0)))
  it = data_lib.make_iterator(config.data, process_index=0, process_count=1)
  batches = [next(it)["cube"] for _ in range(STEPS)]
  fn = mae_task.make_train_step  # bound below per mesh

  def run(mesh_cfg, preset, devices=None):
    mesh = mesh_lib.make_mesh(mesh_cfg, devices)
    rules = rules_lib.get_rules(preset)
    _, shardings = model_state.state_shardings(model, tx, mesh, rules)
    cube_sh = mesh_lib.batch_sharding(mesh, 4)
    with jax.set_mesh(mesh):
      state = model_state.fresh_with_params(jax.device_put(params, shardings.params), tx, shardings)
      step = jax.jit(fn(model, tx, schedule, mask_ratio=config.masking.ratio, rules=rules),
                     in_shardings=(shardings, {"cube": cube_sh}, mesh_lib.replicated(mesh)),
                     out_shardings=(shardings, mesh_lib.replicated(mesh)), donate_argnums=0)
      history = []
      for b in batches:
        state, m = step(state, {"cube": jax.device_put(b, cube_sh)}, jax.random.key(1))
        history.append(jax.device_get(m))
    return state, history

  return run, run({"data": 1, "fsdp": 1, "tensor": 1}, "dp", jax.devices()[:1])


@pytest.mark.parametrize("preset", ["dp", "fsdp", "fsdp_tp"])
def test_preset_matches_one_device_and_shards_as_prescribed(setup, preset):
  run, (ref_state, ref_hist) = setup
  state, hist = run(MESHES[preset], preset)
  for m, r in zip(hist, ref_hist):
    for key in ("loss", "loss_mse", "loss_spectral", "grad_norm"):
      np.testing.assert_allclose(m[key], r[key], rtol=1e-5, err_msg=f"{preset}: {key}")
  got, ref = _flat(jax.device_get(state.params)), _flat(jax.device_get(ref_state.params))
  for k in ref:
    if not k.endswith("attn/k/bias"):
      np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=1e-5, err_msg=f"{preset}: {k}")

  specs = {k: tuple(v.sharding.spec) + (None,) * (v.ndim - len(v.sharding.spec))
           for k, v in _flat(state.params).items()}
  for name, spec in specs.items():
    want = EXPECTED[preset].get(name)
    if preset == "dp":
      want = (None,) * len(spec)
    if want is not None:
      assert spec == want, f"{preset}: {name} sharded {spec}, expected {want}"
  # Adam moments are sharded like their parameters; counters are replicated.
  adam = state.opt_state.inner[0][0]
  for name, mu in _flat(adam.mu).items():
    assert mu.sharding.spec == _flat(state.params)[name].sharding.spec, name
  assert state.step.sharding.spec == P() and adam.count.sharding.spec == P()
  if preset != "dp":  # the memory actually held per device
    q = state.params["blocks"]["layers"]["attn"]["q"]["kernel"]
    local = {"fsdp": (2, 8, 64), "fsdp_tp": (2, 32, 32)}[preset]
    assert q.addressable_shards[0].data.shape == local
