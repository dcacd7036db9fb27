"""The fused C++ MLP kernel for XLA:CPU (spectralgpt_jax/kernels/cpu_mlp) against plain XLA."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectralgpt_jax.kernels import cpu_mlp
from spectralgpt_jax.models import get_model
from spectralgpt_jax.models.transformer import gelu, mlp_impl


@pytest.fixture(scope="module", autouse=True)
def kernel():
  if not cpu_mlp.available():
    pytest.skip("the CPU kernels do not build here (no C++ compiler?)")


def _reference(x, w1, b1, w2, b2):
  return gelu(x @ w1 + b1) @ w2 + b2


def _inputs(shape, hidden, seed=0, scale=1.0):
  rng = np.random.default_rng(seed)
  d = shape[-1]
  f32 = lambda *s: jnp.asarray(rng.normal(size=s), jnp.float32)
  return (f32(*shape) * scale, f32(d, hidden) * d ** -0.5, f32(hidden), f32(hidden, d) * hidden ** -0.5,
          f32(d), f32(*shape))


def _value_and_grads(fn, x, w1, b1, w2, b2, cot):
  loss = lambda *a: jnp.sum(fn(*a) * cot)
  return jax.jit(jax.value_and_grad(loss, tuple(range(5))))(x, w1, b1, w2, b2)


def _assert_close(ours, ref, tol, floor=0.0):
  """Leaf by leaf within tol of the leaf's largest magnitude (or of `floor`, if larger)."""
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
    a, b = np.asarray(a), np.asarray(b)
    assert np.max(np.abs(a - b)) <= tol * max(np.max(np.abs(b)), floor), np.max(np.abs(a - b))


@pytest.mark.parametrize("shape,hidden", [
    ((3, 37, 24), 80),     # rows not a multiple of the 12-row tile, columns not of 32
    ((2, 50, 600), 96),    # K = 600 > the 512 k block: partial sums between blocks
    ((2, 256, 64), 256),   # several column chunks and threads
])
def test_fused_matches_xla_forward_and_all_gradients(shape, hidden):
  x, w1, b1, w2, b2, cot = _inputs(shape, hidden)
  np.testing.assert_allclose(cpu_mlp.fused_mlp(x, w1, b1, w2, b2), _reference(x, w1, b1, w2, b2),
                             rtol=1e-5, atol=1e-5)
  _assert_close(_value_and_grads(cpu_mlp.fused_mlp, x, w1, b1, w2, b2, cot),
                _value_and_grads(_reference, x, w1, b1, w2, b2, cot), 1e-5)


def test_gelu_and_its_derivative_over_the_whole_range():
  """Pre-activations far into both tails (erf saturates beyond |x| = 4, exp underflows)."""
  x, w1, b1, w2, b2, cot = _inputs((1, 64, 16), 32, seed=1, scale=8.0)
  b1 = jnp.linspace(-30.0, 30.0, 32)
  _assert_close(_value_and_grads(cpu_mlp.fused_mlp, x, w1, b1, w2, b2, cot),
                _value_and_grads(_reference, x, w1, b1, w2, b2, cot), 1e-5)


def test_torch_gelu_mlp_is_an_independent_reference():
  torch = pytest.importorskip("torch")
  x, w1, b1, w2, b2, cot = _inputs((2, 64, 48), 192, seed=2)
  tx, tw1, tb1, tw2, tb2 = (torch.tensor(np.asarray(a), requires_grad=True)
                            for a in (x, w1, b1, w2, b2))
  out = torch.nn.functional.gelu(tx @ tw1 + tb1) @ tw2 + tb2  # exact (erf) GELU
  (out * torch.tensor(np.asarray(cot))).sum().backward()
  value, grads = _value_and_grads(cpu_mlp.fused_mlp, x, w1, b1, w2, b2, cot)
  ref = [t.grad.numpy() for t in (tx, tw1, tb1, tw2, tb2)]
  np.testing.assert_allclose(value, (out * torch.tensor(np.asarray(cot))).sum().item(), rtol=1e-5)
  _assert_close(grads, ref, 1e-5)


def test_model_with_fused_mlp_has_the_same_parameters_and_function():
  x = jnp.asarray(np.random.default_rng(3).uniform(size=(2, 12, 32, 32)), jnp.float32)
  noise = jnp.asarray(np.random.default_rng(4).uniform(size=(2, 64)), jnp.float32)
  models = {impl: get_model("mae_vit_tiny_patch8_32", mlp=impl) for impl in ("xla", "fused")}
  params = {impl: nn.unbox(m.init(jax.random.key(0), x, noise=noise))["params"]
            for impl, m in models.items()}
  assert jax.tree.structure(params["xla"]) == jax.tree.structure(params["fused"])
  _assert_close(params["fused"], params["xla"], 0.0)  # same initialisation, bit for bit

  def loss(impl):
    return lambda p: jnp.mean(models[impl].apply({"params": p}, x, noise=noise)[0] ** 2)

  ours = jax.value_and_grad(loss("fused"))(params["xla"])
  ref = jax.value_and_grad(loss("xla"))(params["xla"])
  # Gradients that are zero in exact arithmetic come out ~1e-11 either way: scale by the largest.
  _assert_close(ours, ref, 2e-5, floor=max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(ref)))


def test_auto_rules(monkeypatch):
  long, short = jnp.zeros((1, 256, 8)), jnp.zeros((1, 64, 8))
  assert mlp_impl(long, jnp.float32) == "xla"  # tests simulate 8 devices
  monkeypatch.setattr(jax, "device_count", lambda: 1)
  assert mlp_impl(long, jnp.float32) == "fused"
  assert mlp_impl(long, None) == "fused"
  assert mlp_impl(short, jnp.float32) == "xla"
  assert mlp_impl(long, jnp.bfloat16) == "xla"  # bf16 matmuls: the XLA path
  monkeypatch.setattr(cpu_mlp, "available", lambda: False)
  assert mlp_impl(long, jnp.float32) == "xla"


def test_bad_choices_are_clear_errors():
  with pytest.raises(ValueError, match="mlp impl"):
    mlp_impl(jnp.zeros((1, 4, 8)), jnp.float32, "fast")
  with pytest.raises(ValueError, match="float32"):
    mlp_impl(jnp.zeros((1, 4, 8)), jnp.bfloat16, "fused")
