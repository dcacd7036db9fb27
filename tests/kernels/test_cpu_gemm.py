"""The BLAS GEMM kernel for XLA:CPU (spectralgpt_jax/kernels/cpu_gemm.py) and Dense's use of it.

Opt-in: the kernel's tests run where a BLAS is installed (`pip install '.[cpu-blas]'`,
`make setup-blas`); the fallbacks (no BLAS, a bad path, a library without cblas_sgemm) run
everywhere."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectralgpt_jax.kernels import cpu_gemm
from spectralgpt_jax.models import get_model
from spectralgpt_jax.models.dense_layer import Dense
from spectralgpt_jax.models.ops import Ops

import one_device

BLAS_OPS = Ops(matmul=cpu_gemm.matmul, name="blas")


@pytest.fixture(scope="module")
def blas():
  if cpu_gemm.find_library() is None or not cpu_gemm.available():
    pytest.skip("no BLAS installed: the GEMM kernel is opt-in (pip install '.[cpu-blas]', "
                "x86-64 Linux) or no C++ compiler")


@pytest.mark.usefixtures("blas")
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,k,n", [(7, 5, 3), (300, 200, 100), (64, 1024, 512), (2048, 96, 33)])
def test_gemm_matches_float64_products(m, k, n, trans_a, trans_b):
  rng = np.random.default_rng(m + k + n)
  a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
  out = cpu_gemm.gemm(jnp.asarray(a.T if trans_a else a, jnp.float32),
                      jnp.asarray(b.T if trans_b else b, jnp.float32), trans_a, trans_b)
  ref = a @ b
  assert out.shape == (m, n) and out.dtype == jnp.float32
  np.testing.assert_allclose(out, ref, atol=1e-5 * np.abs(ref).max())


@pytest.mark.usefixtures("blas")
def test_matmul_values_and_gradients_match_xla():
  rng = np.random.default_rng(0)
  x, w, cot = (jnp.asarray(rng.normal(size=s), jnp.float32)
               for s in ((3, 17, 24), (24, 40), (3, 17, 40)))
  loss = lambda mm: lambda x, w: jnp.sum(mm(x, w) * cot)
  np.testing.assert_allclose(cpu_gemm.matmul(x, w), x @ w, rtol=1e-5, atol=1e-5)
  ours = jax.grad(loss(cpu_gemm.matmul), (0, 1))(x, w)
  ref = jax.grad(loss(jnp.matmul), (0, 1))(x, w)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  batched = jax.vmap(cpu_gemm.matmul, in_axes=(0, None))(x, w)  # custom call under vmap
  np.testing.assert_allclose(batched, x @ w, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match=r"x \[..., k\] and w \[k, n\]"):
    cpu_gemm.matmul(x, w.T)


def _lowered(module, x):
  params = module.init(jax.random.key(0), x)
  return jax.jit(module.apply).lower(params, x).as_text()


@pytest.mark.usefixtures("blas")
def test_dense_uses_the_products_of_its_ops():
  x = jnp.ones((2, 5, 8))
  assert "spectralgpt_gemm" in _lowered(Dense(4, ops=BLAS_OPS), x)
  assert "spectralgpt_gemm" not in _lowered(Dense(4), x)
  assert "spectralgpt_gemm" not in _lowered(Dense(4, dtype=jnp.bfloat16, ops=BLAS_OPS), x)


@pytest.mark.usefixtures("blas")
def test_tiny_mae_loss_and_gradients_agree_between_blas_and_xla():
  x = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 12, 32, 32)), jnp.float32)
  noise = jax.random.uniform(jax.random.key(2), (2, 64))
  blas, xla = get_model("mae_vit_tiny_patch8_32", ops=BLAS_OPS), get_model("mae_vit_tiny_patch8_32")
  params = xla.init(jax.random.key(0), x, noise=noise)
  assert "spectralgpt_gemm" in jax.jit(blas.apply).lower(params, x, noise=noise).as_text()

  def loss(model):
    return lambda p: jnp.mean(model.apply(p, x, noise=noise)[0] ** 2)

  (l1, g1), (l2, g2) = (jax.value_and_grad(loss(m))(params) for m in (blas, xla))
  np.testing.assert_allclose(l1, l2, rtol=1e-5)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("setting,message", [
    ("found", None),
    ("/nonexistent/libblas.so", "loading the BLAS /nonexistent/libblas.so failed"),
    ("libm.so.6", "has no cblas_sgemm"),
    ("none", "no BLAS library"),
])
def test_one_device_auto_uses_the_blas_and_a_bad_setting_falls_back(setting, message, request):
  """In a fresh one-device process (the loaded BLAS is process-wide): kernels.select under
  "auto" picks the BLAS; with a bad $SPECTRALGPT_JAX_BLAS, load() names the problem and the
  selection keeps XLA's GEMMs. Only the "found" case needs an installed BLAS."""
  if setting == "found":
    request.getfixturevalue("blas")
  code = ("import jax\n"
          "from spectralgpt_jax.kernels import cpu_gemm, select\n"
          "try:\n  cpu_gemm.load()\nexcept cpu_gemm.BlasUnavailableError as e:\n  print('ERR', e)\n"
          "ops = select.ops_for(jax.devices())\n"
          "print('BLAS' if ops.matmul is cpu_gemm.matmul else 'XLA')\n")
  result = one_device.run(code, **{
      cpu_gemm.ENV_VAR: str(cpu_gemm.find_library()) if setting == "found" else setting})
  lines = result.stdout.splitlines()
  if message is None:
    assert lines == ["BLAS"], result.stdout
  else:
    assert lines[0].startswith("ERR") and message in lines[0], result.stdout
    assert lines[-1] == "XLA"
