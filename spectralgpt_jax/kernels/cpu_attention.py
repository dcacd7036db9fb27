"""Fused softmax attention for XLA:CPU through the XLA FFI (kernel: cpu_attention.cc).

The C++ source ships with the package and is compiled on first use with the machine's C++
compiler (`$CXX`, else g++/c++; `-O3 -march=native`) into a cache directory
(`$SPECTRALGPT_JAX_KERNEL_CACHE`, default `~/.cache/spectralgpt_jax/kernels`), keyed by the
source, flags, compiler, jaxlib version and CPU, and written atomically, so concurrent processes
never load a half-written library. Nothing is built or registered at import.

`fused_attention(q, k, v)` takes q, k, v [B, N, H, D] (any float dtype; the kernel computes in
float32) and has a custom VJP: the forward saves only the output and the per-query log-sum-exp,
and the backward recomputes the probabilities block by block (FlashAttention's recipe on CPU
cache blocks). XLA's partitioner cannot split the custom call: under a jit that shards its
inputs they are gathered and every device runs the whole batch (correct, not parallel), so
attention="auto" uses the kernel only in one-device processes.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

_SOURCE = pathlib.Path(__file__).with_name("cpu_attention.cc")
_FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-std=c++17", "-shared", "-fPIC", "-w")
_TARGETS = {"forward": "SpectralgptAttentionForward", "backward": "SpectralgptAttentionBackward"}
HEAD_DIMS = (32, 64)
_log = logging.getLogger(__name__)


class KernelBuildError(RuntimeError):
  """The fused kernel could not be compiled or loaded on this machine."""


def _compiler() -> str:
  for name in (os.environ.get("CXX"), "g++", "c++"):
    if name and shutil.which(name):
      return shutil.which(name)
  raise KernelBuildError("no C++ compiler found (set $CXX or install g++)")


def _cpu_signature() -> str:
  """The CPU's feature flags: a library built with -march=native is only valid on them."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("flags"):
        return line
  except OSError:
    pass
  return platform.processor() or platform.machine()


def cache_dir() -> pathlib.Path:
  default = pathlib.Path.home() / ".cache" / "spectralgpt_jax" / "kernels"
  return pathlib.Path(os.environ.get("SPECTRALGPT_JAX_KERNEL_CACHE", default))


def build() -> pathlib.Path:
  """Compiles cpu_attention.cc (once per source/flags/compiler/CPU) and returns the .so path."""
  compiler = _compiler()
  include = jax.ffi.include_dir()
  version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
  parts = (_SOURCE.read_text(), " ".join(_FLAGS), version, importlib.metadata.version("jaxlib"),
           _cpu_signature())
  key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
  target = cache_dir() / f"cpu_attention-{key}.so"
  if target.exists():
    return target
  try:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
  except OSError as e:
    raise KernelBuildError(f"cannot write the kernel cache {target.parent}: {e} "
                           "(set SPECTRALGPT_JAX_KERNEL_CACHE)") from e
  os.close(fd)
  cmd = [compiler, *_FLAGS, f"-I{include}", str(_SOURCE), "-o", tmp]
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode != 0:
    os.unlink(tmp)
    raise KernelBuildError(f"compiling {_SOURCE.name} failed ({' '.join(cmd)}):\n"
                           f"{result.stderr[-4000:]}")
  os.replace(tmp, target)  # atomic: other processes see no library or the whole one
  return target


@functools.cache
def _register() -> ctypes.CDLL:
  """Builds, loads and registers the FFI targets (first call only); raises KernelBuildError."""
  path = build()
  try:
    library = ctypes.cdll.LoadLibrary(str(path))
  except OSError as e:
    raise KernelBuildError(f"loading {path} failed: {e}") from e
  for name, symbol in _TARGETS.items():
    target = f"spectralgpt_attention_{name}"
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                platform="cpu")
  return library  # kept alive by the cache: the registered handlers live in it


@functools.cache
def available() -> bool:
  """Whether the kernel builds and loads here (logs the reason once when it does not)."""
  try:
    _register()
    return True
  except KernelBuildError as e:
    _log.warning("fused CPU attention unavailable, using the XLA implementation: %s", e)
    return False


def supports(q: jax.Array) -> bool:
  """Shapes the kernel takes: [B, N, H, D] with D in HEAD_DIMS and N a multiple of 16."""
  return q.ndim == 4 and q.shape[-1] in HEAD_DIMS and q.shape[1] % 16 == 0


def _forward(q, k, v):
  b, n, h, d = q.shape
  f32 = lambda t: t.astype(jnp.float32)
  out, lse = jax.ffi.ffi_call(
      "spectralgpt_attention_forward",
      (jax.ShapeDtypeStruct(q.shape, jnp.float32), jax.ShapeDtypeStruct((b, h, n), jnp.float32)),
  )(f32(q), f32(k), f32(v), scale=np.float32(d ** -0.5))
  return out, lse


@jax.custom_vjp
def _fused(q, k, v):
  return _forward(q, k, v)[0].astype(q.dtype)


def _fused_fwd(q, k, v):
  out, lse = _forward(q, k, v)
  return out.astype(q.dtype), (q, k, v, out, lse)


def _fused_bwd(res, g):
  q, k, v, out, lse = res
  shape = jax.ShapeDtypeStruct(q.shape, jnp.float32)
  f32 = lambda t: t.astype(jnp.float32)
  dq, dk, dv = jax.ffi.ffi_call("spectralgpt_attention_backward", (shape, shape, shape))(
      f32(q), f32(k), f32(v), out, lse, f32(g), scale=np.float32(q.shape[-1] ** -0.5))
  return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype)


_fused.defvjp(_fused_fwd, _fused_bwd)


@functools.partial(jax.named_call, name="fused_cpu_attention")
def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array) -> jax.Array:
  """softmax(q k^T / sqrt(d)) v for q, k, v [B, N, H, D] -> [B, N, H, D], on XLA:CPU.

  Raises KernelBuildError where the kernel cannot be built, ValueError for shapes it does not
  take (see `supports`).
  """
  if not supports(q):
    raise ValueError(f"fused CPU attention takes [B, N, H, D] with D in {HEAD_DIMS} and N % 16 "
                     f"== 0, got {q.shape}")
  _register()
  return _fused(q, k, v)
