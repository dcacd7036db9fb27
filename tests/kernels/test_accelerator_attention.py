"""TPU splash / GPU cuDNN attention: same function as ops.xla_attention; chosen per platform.

The splash kernel runs here through the Pallas interpreter (values and gradients, unsharded and
shard_mapped over a CPU mesh); that the compiled TPU program holds the kernel and the GPU one
cuDNN's fmha calls is checked with the real compilers in tests/compile/test_attention_compile.py.
"""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from spectralgpt_jax.kernels import gpu_attention, select, tpu_attention
from spectralgpt_jax.models import ops as ops_lib

TargetDevice = collections.namedtuple("TargetDevice", "platform")
TPU, GPU, CPU = TargetDevice("tpu"), TargetDevice("cuda"), TargetDevice("cpu")


def _qkv(shape, dtype=jnp.float32, seed=0):
  return tuple(jax.random.normal(k, shape, jnp.float32).astype(dtype)
               for k in jax.random.split(jax.random.key(seed), 3))


def _grads(fn, q, k, v):
  loss = lambda q, k, v: jnp.sum(jnp.sin(fn(q, k, v).astype(jnp.float32)))
  return jax.grad(loss, argnums=(0, 1, 2))(q, k, v)


def test_mesh_axes_are_the_sharding_rooms():
  from spectralgpt_jax.sharding import rules
  assert tpu_attention.BATCH_AXES == rules.BATCH_AXES
  assert tpu_attention.TENSOR in rules.MESH_AXES


def test_block_sizes_suit_the_decoder():
  assert tpu_attention.block_size(1024) == 512  # 2 x 2 blocks of the 1024-token decoder
  assert tpu_attention.block_size(384) == 384
  assert tpu_attention.block_size(256) == 256
  assert tpu_attention.block_size(102) == 0  # the encoder's kept tokens: XLA
  for d in (32, 64):
    assert tpu_attention.supports(jnp.zeros((2, 1024, 16, d)))
  assert not tpu_attention.supports(jnp.zeros((2, 102, 16, 32)))


@pytest.mark.parametrize("shape", [(2, 1024, 2, 32), (1, 1024, 2, 64), (2, 256, 3, 32)])
def test_splash_interpret_equals_xla_values_and_gradients(shape):
  q, k, v = _qkv(shape)
  out = tpu_attention.splash_attention_interpret(q, k, v)
  np.testing.assert_allclose(out, ops_lib.xla_attention(q, k, v), atol=2e-6, rtol=1e-5)
  for g, r in zip(_grads(tpu_attention.splash_attention_interpret, q, k, v),
                  _grads(ops_lib.xla_attention, q, k, v)):
    np.testing.assert_allclose(g, r, atol=2e-5, rtol=1e-4)


def test_splash_interpret_bfloat16_close_to_xla():
  q, k, v = _qkv((1, 1024, 2, 32), jnp.bfloat16)
  out = tpu_attention.splash_attention_interpret(q, k, v)
  assert out.dtype == jnp.bfloat16
  ref = ops_lib.xla_attention(q, k, v)
  np.testing.assert_allclose(out.astype(np.float32), ref.astype(np.float32), atol=2e-2)


def test_splash_shard_maps_over_the_batch_of_a_mesh():
  """Under jax.set_mesh the kernel runs per batch shard (XLA cannot partition a custom call)."""
  devices = jax.devices()[:4]
  if len(devices) < 4:
    pytest.skip("needs 4 CPU devices (tests/conftest.py simulates 8)")
  mesh = Mesh(np.array(devices).reshape(2, 2, 1), ("data", "fsdp", "tensor"))
  q, k, v = _qkv((4, 256, 2, 32))
  sh = NamedSharding(mesh, P(("data", "fsdp")))
  f = jax.jit(lambda q, k, v: _grads(tpu_attention.splash_attention_interpret, q, k, v))
  with jax.set_mesh(mesh):
    text = f.lower(q, k, v).as_text()
    grads = f(*(jax.device_put(t, sh) for t in (q, k, v)))
  assert "shard_map" in text or "sdy.manual_computation" in text
  for g, r in zip(grads, _grads(ops_lib.xla_attention, q, k, v)):
    np.testing.assert_allclose(g, r, atol=2e-5, rtol=1e-4)


def test_splash_falls_back_to_xla_for_shapes_it_does_not_take():
  q, k, v = _qkv((1, 102, 2, 32))
  text = jax.jit(tpu_attention.splash_attention_interpret).lower(q, k, v).as_text()
  assert "pallas" not in text.lower() and "custom_call" not in text


def _numpy_attention(q, k, v) -> np.ndarray:
  """softmax(q k^T / sqrt(d)) v in float64 NumPy, q, k, v [B, N, H, d] (any float dtype)."""
  q, k, v = (np.asarray(jnp.asarray(t, jnp.float32), np.float64) for t in (q, k, v))
  logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
  w = np.exp(logits - logits.max(-1, keepdims=True))
  return np.einsum("bhqk,bkhd->bqhd", w / w.sum(-1, keepdims=True), v)


def test_cudnn_is_chosen_statically_from_dtype_and_head_dim():
  assert gpu_attention.supports(jnp.zeros((2, 1024, 16, 32), jnp.bfloat16))
  assert gpu_attention.supports(jnp.zeros((2, 102, 16, 64), jnp.float16))
  assert not gpu_attention.supports(jnp.zeros((2, 1024, 16, 32), jnp.float32))
  assert not gpu_attention.supports(jnp.zeros((2, 1024, 16, 12), jnp.bfloat16))
  assert not gpu_attention.supports(jnp.zeros((2, 1024, 2, 256), jnp.bfloat16))


@pytest.mark.skipif(jax.devices()[0].platform == "gpu", reason="a GPU has cuDNN: see the "
                    "device test below")
def test_cudnn_routes_only_what_it_supports_to_cudnn_on_a_cpu_host():
  """What a CPU can check: float32, mixed dtypes and unsupported head dims take the XLA path
  (no custom call; NumPy's values); a supported bf16 call does ask for cuDNN (which a CPU
  host then refuses by name)."""
  for q, k, v in (_qkv((1, 64, 2, 32)), _qkv((1, 64, 2, 12), jnp.bfloat16),
                  (*_qkv((1, 64, 2, 32), jnp.bfloat16)[:2], _qkv((1, 64, 2, 32))[2])):
    lowered = jax.jit(gpu_attention.cudnn_attention).lower(q, k, v).as_text()
    assert "custom_call" not in lowered and "__cudnn" not in lowered
    out = gpu_attention.cudnn_attention(q, k, v)
    assert out.shape == q.shape and out.dtype == q.dtype
    tol = 1e-5 if q.dtype == jnp.float32 else 3e-2
    np.testing.assert_allclose(np.asarray(out, np.float32), _numpy_attention(q, k, v), atol=tol)
  with pytest.raises(RuntimeError, match="cuDNN"):
    gpu_attention.cudnn_attention(*_qkv((1, 64, 2, 32), jnp.bfloat16))


@pytest.mark.skipif(jax.devices()[0].platform != "gpu",
                    reason="needs an NVIDIA GPU with cuDNN (jax sees no GPU here)")
def test_cudnn_kernel_on_gpu_equals_numpy_in_bfloat16():
  """The real cuDNN flash attention (bf16) against float64 NumPy on the same bf16 inputs, and
  its gradients against XLA's float32 attention on them."""
  q, k, v = _qkv((2, 1024, 4, 64), jnp.bfloat16)
  fn = jax.jit(gpu_attention.cudnn_attention)
  assert "__cudnn$fmha" in fn.lower(q, k, v).compile().as_text()
  out = fn(q, k, v)
  assert out.dtype == jnp.bfloat16 and out.shape == q.shape
  np.testing.assert_allclose(np.asarray(out, np.float32), _numpy_attention(q, k, v), atol=2e-2)
  f32 = tuple(t.astype(jnp.float32) for t in (q, k, v))
  for g, r in zip(_grads(gpu_attention.cudnn_attention, q, k, v),
                  _grads(ops_lib.xla_attention, *f32)):
    np.testing.assert_allclose(np.asarray(g, np.float32), r, atol=5e-2, rtol=5e-2)


def test_select_picks_by_platform():
  assert select.ops_for([TPU] * 4, max_tokens=1024).attention is select.long_splash_attention
  assert select.ops_for([TPU] * 4, max_tokens=102) is ops_lib.XLA_OPS
  assert (select.ops_for([TPU], attention="splash").attention
          is tpu_attention.splash_attention)
  assert select.ops_for([GPU] * 8).attention is gpu_attention.cudnn_attention
  assert (select.ops_for([GPU], attention="cudnn", max_tokens=102).attention
          is gpu_attention.cudnn_attention)
  assert select.ops_for([GPU], attention="xla") is ops_lib.XLA_OPS
  rocm = TargetDevice("rocm")  # a GPU without cuDNN: XLA, and "cudnn" refused
  assert select.ops_for([rocm] * 2, max_tokens=1024) is ops_lib.XLA_OPS
  with pytest.raises(ValueError, match="needs NVIDIA GPUs"):
    select.ops_for([rocm], attention="cudnn")


@pytest.mark.parametrize("platform,impl", [(CPU, "splash"), (GPU, "splash"), (CPU, "cudnn"),
                                           (TPU, "cudnn"), (TPU, "fused"), (GPU, "blocked")])
def test_kernels_of_another_platform_are_refused(platform, impl):
  with pytest.raises(ValueError, match="implementation, but the program is compiled for"):
    select.ops_for([platform], attention=impl)


def test_long_splash_keeps_short_sequences_on_xla():
  q, k, v = _qkv((1, 128, 2, 32))
  text = jax.jit(select.long_splash_attention).lower(q, k, v).as_text()
  assert "custom_call" not in text
