"""The cache-blocked XLA attention (kernels/blocked_attention.py) equals plain attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectralgpt_jax.kernels.blocked_attention import blocked_attention
from spectralgpt_jax.models.ops import xla_attention


@pytest.mark.parametrize("dtype,tol", [(jnp.float32, 2e-6), (jnp.bfloat16, 2e-2)])
def test_blocked_attention_equals_plain_with_gradients(dtype, tol):
  rng = np.random.default_rng(13)
  q, k, v = (jnp.asarray(rng.normal(size=(2, 300, 4, 8)), dtype) for _ in range(3))
  cot = jnp.asarray(rng.normal(size=(2, 300, 4, 8)), jnp.float32)

  def loss(fn):
    return jax.jit(jax.value_and_grad(
        lambda q, k, v: jnp.sum(fn(q, k, v).astype(jnp.float32) * cot), (0, 1, 2)))

  ref, ours = loss(xla_attention)(q, k, v), loss(blocked_attention)(q, k, v)
  for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    assert np.max(np.abs(a - b)) <= tol * np.max(np.abs(b))
