"""float32 matmul for XLA:CPU through a vendor BLAS (kernel: cpu_gemm.cc).

Opt-in. Where Intel MKL's sgemm beats XLA:CPU's own GEMMs on this model's shapes depends on the
CPU (`make bench-gemm`; BENCHMARKS.md has both kinds of machine), so the BLAS is only used once
installed: the `mkl` wheel (`pip install '.[cpu-blas]'`, or `make setup-blas`), found through
its package metadata, or `$SPECTRALGPT_JAX_BLAS`: the path
of any shared library with cblas_sgemm (MKL's or OpenBLAS's are put in single-threaded mode;
the kernel spreads each product over XLA's own threads), or "none" to turn it off. Nothing is
loaded at import.

`matmul(x, w)`: x [..., k] @ w [k, n] -> [..., n] float32, with a custom VJP whose input and
weight gradients are BLAS products too (the weight gradient over the flattened tokens).
XLA's partitioner cannot split the custom call, so kernels.select uses it only in one-device
programs. `load()` builds and loads (outside tracing); `gemm` only checks that it was done.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import logging
import os
import pathlib

import jax
import jax.numpy as jnp

from spectralgpt_jax.kernels import build

ENV_VAR = "SPECTRALGPT_JAX_BLAS"
_MKL_NAMES = ("libmkl_rt.so.3", "libmkl_rt.so.2", "libmkl_rt.so")
_log = logging.getLogger(__name__)


class BlasUnavailableError(RuntimeError):
  """No usable BLAS library (or the CPU kernels do not build)."""


def find_library() -> pathlib.Path | None:
  """The BLAS to load: $SPECTRALGPT_JAX_BLAS, else MKL's runtime library from the `mkl` wheel.

  Returns None when turned off ("none") or when no MKL is installed.
  """
  env = os.environ.get(ENV_VAR, "").strip()
  if env.lower() == "none":
    return None
  if env:
    return pathlib.Path(env)
  try:
    files = importlib.metadata.files("mkl") or []
  except importlib.metadata.PackageNotFoundError:
    return None
  by_name = {f.name: f for f in files}
  for name in _MKL_NAMES:
    if name in by_name:
      return pathlib.Path(by_name[name].locate()).resolve()
  return None


@functools.cache
def load() -> ctypes.CDLL:
  """Builds the kernels, loads the BLAS into them (first call only); raises
  BlasUnavailableError (or build.KernelBuildError) saying why not."""
  path = find_library()
  if path is None:
    raise BlasUnavailableError(f"no BLAS library: install the `mkl` wheel (pip install "
                               f"'.[cpu-blas]') or set ${ENV_VAR} to a library with cblas_sgemm")
  try:
    ctypes.CDLL(str(path), mode=os.RTLD_LOCAL)  # for the loader's own error message
  except OSError as e:
    raise BlasUnavailableError(f"loading the BLAS {path} failed: {e}") from e
  library = build.register()
  status = library.spectralgpt_load_blas(str(path).encode())
  if status != 0:
    raise BlasUnavailableError(f"the BLAS {path} has no cblas_sgemm")
  return library


@functools.cache
def available() -> bool:
  """Whether the BLAS GEMM works here (logs the reason once when it does not)."""
  try:
    load()
    return True
  except (BlasUnavailableError, build.KernelBuildError) as e:
    _log.warning("BLAS GEMM unavailable, dense layers use XLA's: %s", e)
    return False


def gemm(a: jax.Array, b: jax.Array, trans_a: bool = False, trans_b: bool = False) -> jax.Array:
  """op(a) @ op(b) for 2-D float32 a, b; op transposes where asked (a [k, m] with trans_a,
  b [n, k] with trans_b). Not differentiable itself: `matmul` defines the gradients. Raises
  unless `load()` has succeeded."""
  if not load.cache_info().currsize:
    raise BlasUnavailableError("the BLAS GEMM is not loaded: call cpu_gemm.load() (or "
                               "kernels.select.ops_for) before tracing")
  m = a.shape[1] if trans_a else a.shape[0]
  n = b.shape[0] if trans_b else b.shape[1]
  return jax.ffi.ffi_call("spectralgpt_gemm", jax.ShapeDtypeStruct((m, n), jnp.float32),
                          vmap_method="sequential")(
      a.astype(jnp.float32), b.astype(jnp.float32), trans_a=trans_a, trans_b=trans_b)


def _flat(x: jax.Array) -> jax.Array:
  return x.reshape(-1, x.shape[-1])


@jax.custom_vjp
def _matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  return gemm(_flat(x), w).reshape(*x.shape[:-1], w.shape[1])


def _matmul_fwd(x, w):
  return _matmul(x, w), (x, w)


def _matmul_bwd(res, g):
  x, w = res
  dx = gemm(_flat(g), w, trans_b=True).reshape(x.shape)
  return dx, gemm(_flat(x), _flat(g), trans_a=True)


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


@functools.partial(jax.named_call, name="blas_matmul")
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., k] @ w [k, n] -> [..., n] in float32 through the BLAS (raises where unavailable)."""
  if w.ndim != 2 or x.shape[-1] != w.shape[0]:
    raise ValueError(f"matmul takes x [..., k] and w [k, n], got {x.shape} and {w.shape}")
  return _matmul(x.astype(jnp.float32), w.astype(jnp.float32))
