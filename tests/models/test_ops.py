"""The XLA products of models/ops.py: their custom VJPs give autodiff's gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from spectralgpt_jax.models.ops import lowp_matmul, xla_matmul


def _inputs():
  rng = np.random.default_rng(0)
  return (jnp.asarray(rng.normal(size=(3, 17, 24)), jnp.float32),
          jnp.asarray(rng.normal(size=(24, 40)), jnp.float32),
          jnp.asarray(rng.normal(size=(3, 17, 40)), jnp.float32))


def test_xla_matmul_matches_autodiff_of_a_plain_matmul():
  x, w, cot = _inputs()
  ours = jax.grad(lambda x, w: jnp.sum(xla_matmul(x, w) * cot), (0, 1))(x, w)
  ref = jax.grad(lambda x, w: jnp.sum((x @ w) * cot), (0, 1))(x, w)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_lowp_matmul_gradients_are_the_bf16_products():
  x, w, cot = _inputs()
  ours = jax.grad(lambda x, w: jnp.sum(lowp_matmul(x, w, jnp.bfloat16) * cot), (0, 1))(x, w)
  xl, wl, gl = (t.astype(jnp.bfloat16).astype(jnp.float32) for t in (x, w, cot))
  ref = (gl @ wl.T, jnp.einsum("bnk,bnm->km", xl, gl))
  for a, b in zip(ours, ref):
    assert a.dtype == jnp.float32
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
