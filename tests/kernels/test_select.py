"""kernels.select: implementations come from the compile target's devices, not the host."""

import collections

import jax
import jax.numpy as jnp
import pytest

from spectralgpt_jax.kernels import build, gpu_attention, select
from spectralgpt_jax.models import ops as ops_lib

import one_device

# What select reads of a device: its platform (TPU/GPU topologies are compiled in
# tests/compile with the real compilers; here only the choice is checked).
TargetDevice = collections.namedtuple("TargetDevice", "platform")


def _hlo(fn, *shapes):
  return jax.jit(fn).lower(*(jnp.zeros(s) for s in shapes)).as_text()


def test_one_cpu_device_uses_the_fused_kernel_for_long_sequences_only():
  if not build.available():
    pytest.skip("the CPU kernels do not build here (no C++ compiler?)")
  ops = select.ops_for(jax.devices()[:1], matmul="xla")
  assert ops.attention is select.long_fused_attention
  attend = lambda q: ops.attention(q, q, q)
  assert "spectralgpt_attention_forward" in _hlo(attend, (1, 256, 2, 32))
  assert "spectralgpt" not in _hlo(attend, (1, 64, 2, 32))
  assert "spectralgpt" not in _hlo(attend, (1, 260, 2, 32))  # N % 16 != 0: blocked XLA


def test_several_cpu_devices_never_use_a_custom_call():
  ops = select.ops_for(jax.devices()[:8])
  assert ops.attention is select.long_blocked_attention
  assert ops.matmul is ops_lib.xla_matmul
  assert "spectralgpt" not in _hlo(lambda q: ops.attention(q, q, q), (2, 256, 2, 32))


@pytest.mark.parametrize("platform", ["tpu", "cuda", "gpu"])
def test_accelerator_targets_get_their_kernels_and_refuse_cpu_kernels(platform):
  devices = [TargetDevice(platform)] * 8
  ops = select.ops_for(devices, max_tokens=1024)
  assert ops.matmul is ops_lib.xla_matmul
  assert ops.attention is (select.long_splash_attention if platform == "tpu"
                           else gpu_attention.cudnn_attention)
  assert select.ops_for(devices, attention="xla") == ops_lib.XLA_OPS
  for field, value in (("attention", "fused"), ("attention", "blocked"), ("matmul", "blas")):
    with pytest.raises(ValueError, match=f"kernels.{field}='{value}' is a CPU implementation"):
      select.ops_for(devices, **{field: value})


def test_unknown_choices_are_named():
  with pytest.raises(ValueError, match="kernels.attention must be one of"):
    select.ops_for(jax.devices()[:1], attention="flash")
  with pytest.raises(ValueError, match="kernels.matmul must be one of"):
    select.ops_for(jax.devices()[:1], matmul="mkl")


def test_model_init_and_apply_never_compile_kernels(tmp_path):
  """A model on the default ops, even with a 1024-token decoder in a one-device process,
  neither builds nor calls a C++ kernel (nothing compiles inside init or apply)."""
  code = ("import jax, jax.numpy as jnp\n"
          "from spectralgpt_jax.models import get_model\n"
          "m = get_model('mae_vit_tiny_patch8_32', img_size=128)\n"
          "x = jnp.zeros((1, 12, 128, 128))\n"
          "v = m.init({'params': jax.random.key(0), 'masking': jax.random.key(1)}, x)\n"
          "hlo = jax.jit(lambda v, x: m.apply(v, x, rngs={'masking': jax.random.key(2)}))"
          ".lower(v, x).as_text()\n"
          "assert 'spectralgpt' not in hlo\n")
  one_device.run(code, SPECTRALGPT_JAX_KERNEL_CACHE=str(tmp_path / "cache"))
  assert not (tmp_path / "cache").exists()


def test_traced_kernel_without_a_build_is_an_error_not_a_compile(tmp_path):
  code = ("import jax, jax.numpy as jnp\n"
          "from spectralgpt_jax.kernels import build, cpu_attention\n"
          "q = jnp.zeros((1, 256, 2, 32))\n"
          "try:\n  jax.jit(lambda q: cpu_attention.fused_attention(q, q, q)).lower(q)\n"
          "except build.KernelBuildError as e:\n  print('ERR', e)\n")
  result = one_device.run(code, SPECTRALGPT_JAX_KERNEL_CACHE=str(tmp_path / "cache"))
  assert result.stdout.startswith("ERR the CPU kernels are not built"), result.stdout
  assert not (tmp_path / "cache").exists()
