"""Slow tier: real TPU / GPU compiles from this CPU host (run in .venv-tpu / .venv-cuda12).

  .venv-tpu/bin/python -m pytest -q -m slow tests/compile
  .venv-cuda12/bin/python -m pytest -q -m slow tests/compile
In the default venv (no libtpu, no CUDA plugin) every test here skips, naming the extra.
"""

from __future__ import annotations

import pathlib

import pytest

from spectralgpt_jax.cli import _config
from spectralgpt_jax.compile import aot, report, targets

pytestmark = pytest.mark.slow

TPU_TARGET, GPU_TARGET = "v5e-4", "h100"
BASE = str(pathlib.Path(__file__).resolve().parents[2] / "configs/pretrain/spectralgpt_plus_base_128.py")


def _need(platform: str) -> targets.Target:
  name = TPU_TARGET if platform == "tpu" else GPU_TARGET
  ok, why = targets.compiler_available(platform)
  if not ok:
    pytest.skip(why)
  return targets.prepare(name)


def _toy_lowered(devices, n_params=4096, batch=512):
  """An FSDP-sharded MLP step: params and batch split over all devices."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  mesh = Mesh(np.array(devices), ("fsdp",))

  def step(w, x):
    loss = lambda w: jnp.mean(jnp.tanh(x @ w) ** 2)
    return w - 0.1 * jax.grad(loss)(w)

  sh = NamedSharding(mesh, P("fsdp", None))
  fn = jax.jit(step, in_shardings=(sh, sh), out_shardings=sh, donate_argnums=0)
  return fn.lower(jax.ShapeDtypeStruct((n_params, n_params), jnp.bfloat16, sharding=sh),
                  jax.ShapeDtypeStruct((batch, n_params), jnp.bfloat16, sharding=sh))


@pytest.mark.parametrize("platform", ["tpu", "cuda"])
def test_toy_fsdp_step_compiles_and_reports(platform):
  target = _need(platform)
  if platform == "cuda":
    target = targets.prepare("8xh100")  # FSDP needs more than one GPU
  devices = targets.target_devices(target.name)
  assert devices[0].device_kind == target.device_kind
  rep = report.compile_and_report(_toy_lowered(devices), target)
  assert rep["compiled"] and rep["verdict"] == "fits", rep
  mem = rep["memory"]
  state = 4096 * 4096 * 2 // target.num_devices
  assert mem["arguments"] >= state and mem["aliased"] >= state  # donated, sharded weights
  assert mem["total"] < 1 << 30
  assert rep["collectives"]["all-gather"] >= 1, rep["collectives"]
  if platform == "tpu":
    assert rep["flops"]["available"] and rep["flops"]["flops"] > 0
  assert not aot.forbidden_custom_calls(rep)


def test_tpu_refusal_is_a_verdict():
  target = _need("tpu")
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  mesh = Mesh(np.array(targets.target_devices(target.name)), ("x",))
  fn = jax.jit(lambda x: jnp.exp(x) @ jnp.cos(x) + jnp.sin(x),
               in_shardings=NamedSharding(mesh, P()))
  rep = report.compile_and_report(fn.lower(jax.ShapeDtypeStruct((80000, 80000), jnp.float32)),
                                  target)
  assert not rep["compiled"] and rep["verdict"] == "does not fit"
  assert "RESOURCE_EXHAUSTED" in rep["error"]
  assert rep["memory"]["device_memory_gib"] == pytest.approx(target.memory_bytes / targets.GIB)


@pytest.mark.parametrize("platform", ["tpu", "cuda"])
def test_base_train_step_compiles_without_cpu_kernels(platform):
  """The unchanged base config (batch cut to 8 per device) compiles; no spectralgpt_ custom call."""
  target = _need(platform)
  config = _config.load(BASE)
  config.batch_size = 8 * target.num_devices
  rep = aot.compile_config(config, target.name)
  assert rep["compiled"], rep.get("error")
  assert not aot.forbidden_custom_calls(rep), rep["custom_calls"]
  assert rep["memory"]["total"] > 0 and rep["verdict"] == "fits"
  if target.num_devices > 1:
    assert sum(rep["collectives"].values()) > 0
