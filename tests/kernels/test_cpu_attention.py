"""The fused C++ attention kernel for XLA:CPU (spectralgpt_jax/kernels) against plain attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectralgpt_jax.kernels import build, cpu_attention
from spectralgpt_jax.models.ops import xla_attention

IMPLS = {"xla": xla_attention, "fused": cpu_attention.fused_attention}


@pytest.fixture(scope="module", autouse=True)
def kernel():
  if not build.available():
    pytest.skip("the fused CPU attention kernel does not build here (no C++ compiler?)")


def attend(q, k, v, impl):
  return IMPLS[impl](q, k, v)


def _value_and_grads(impl, q, k, v, cot):
  fn = lambda q, k, v: jnp.sum(attend(q, k, v, impl).astype(jnp.float32) * cot)
  return jax.jit(jax.value_and_grad(fn, (0, 1, 2)))(q, k, v)


def _assert_close(ours, ref, tol):
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b)), np.max(np.abs(a - b))


# Shapes: both head dims, a sequence that is not a multiple of the 64-query block, and peaked
# softmax (logit scale 6) where a poor exp or max would show.
@pytest.mark.parametrize("shape,scale", [((2, 256, 4, 32), 1.0), ((1, 1040, 2, 32), 6.0),
                                         ((2, 144, 3, 64), 1.0), ((1, 528, 2, 64), 4.0)])
def test_fused_matches_plain_attention_and_gradients(shape, scale):
  rng = np.random.default_rng(0)
  q, k, v = (jnp.asarray(rng.normal(size=shape) * s, jnp.float32) for s in (scale, 1.0, 1.0))
  cot = jnp.asarray(rng.normal(size=shape), jnp.float32)
  out = jax.jit(lambda *a: attend(*a, "fused"))(q, k, v)
  np.testing.assert_allclose(out, attend(q, k, v, "xla"), rtol=0, atol=2e-5)
  _assert_close(_value_and_grads("fused", q, k, v, cot), _value_and_grads("xla", q, k, v, cot),
                2e-5)


def test_fused_takes_bfloat16_and_returns_it():
  rng = np.random.default_rng(1)
  q, k, v = (jnp.asarray(rng.normal(size=(2, 256, 2, 32)), jnp.bfloat16) for _ in range(3))
  cot = jnp.asarray(rng.normal(size=(2, 256, 2, 32)), jnp.float32)
  ours = _value_and_grads("fused", q, k, v, cot)
  assert attend(q, k, v, "fused").dtype == jnp.bfloat16
  assert all(g.dtype == jnp.bfloat16 for g in ours[1])
  _assert_close(ours, _value_and_grads("xla", q, k, v, cot), 2e-2)


def test_unsupported_shape_is_a_clear_error():
  with pytest.raises(ValueError, match="D in"):
    cpu_attention.fused_attention(*(jnp.zeros((1, 64, 2, 8)),) * 3)


def test_fused_under_a_batch_sharded_jit_is_still_correct():
  devices = np.array(jax.devices()[:4])
  if devices.size < 4:
    pytest.skip("needs 4 devices (tests/conftest.py simulates 8 on CPU)")
  mesh = jax.sharding.Mesh(devices, ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  rng = np.random.default_rng(2)
  q, k, v, cot = (jax.device_put(jnp.asarray(rng.normal(size=(4, 256, 2, 32)), jnp.float32),
                                 sharding) for _ in range(4))
  ours = _value_and_grads("fused", q, k, v, cot)
  _assert_close(ours, _value_and_grads("xla", q, k, v, cot), 2e-5)


def test_fused_matches_torch_sdpa_at_the_decoder_length():
  """Independent reference: PyTorch's scaled_dot_product_attention and its autograd, N = 1024."""
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(3)
  q, k, v, cot = (rng.normal(size=(1, 1024, 4, 32)).astype(np.float32) for _ in range(4))
  ours = _value_and_grads("fused", *(jnp.asarray(t) for t in (q, k, v)), jnp.asarray(cot))
  tq, tk, tv = (torch.tensor(t.transpose(0, 2, 1, 3), requires_grad=True) for t in (q, k, v))
  out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
  loss = (out * torch.tensor(cot.transpose(0, 2, 1, 3))).sum()
  loss.backward()
  ref = (loss.detach().numpy(),
         tuple(t.grad.numpy().transpose(0, 2, 1, 3) for t in (tq, tk, tv)))
  _assert_close(ours, ref, 2e-5)
