"""Builds and loads the package's XLA:CPU kernels (the *.cc files here) as one shared library.

The C++ sources ship with the package and are compiled on first use with the machine's C++
compiler (`$CXX`, else g++/c++; `-O3 -march=native`) into a cache directory
(`$SPECTRALGPT_JAX_KERNEL_CACHE`, default `~/.cache/spectralgpt_jax/kernels`), keyed by the
sources, flags, compiler, jaxlib version and CPU, and written atomically, so concurrent processes
never load a half-written library. Nothing is built or registered at import: `register()` does
it when first asked (by `kernels.select.ops_for`, before any tracing, with a log line) and
registers every FFI target with XLA:CPU. The kernel wrappers never build: traced code calls
`require_registered()`, which raises instead.
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
from absl import logging as absl_logging

_HERE = pathlib.Path(__file__).parent
SOURCES = (_HERE / "cpu_attention.cc", _HERE / "cpu_gemm.cc")
HEADERS = (_HERE / "simd.h",)
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-std=c++17", "-shared", "-fPIC", "-w")
LIBS = ("-ldl",)  # cpu_gemm.cc loads the BLAS at run time
# FFI target name (as jax.ffi.ffi_call uses it) -> exported handler symbol.
TARGETS = {
    "spectralgpt_attention_forward": "SpectralgptAttentionForward",
    "spectralgpt_attention_backward": "SpectralgptAttentionBackward",
    "spectralgpt_gemm": "SpectralgptGemm",
}
_log = logging.getLogger(__name__)


class KernelBuildError(RuntimeError):
  """The CPU kernels could not be compiled or loaded on this machine."""


def compiler() -> str:
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
  """Compiles the kernels (once per sources/flags/compiler/CPU) and returns the .so path."""
  cxx = compiler()
  include = jax.ffi.include_dir()
  version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
  parts = (*(p.read_text() for p in SOURCES + HEADERS), " ".join(FLAGS + LIBS), version,
           importlib.metadata.version("jaxlib"), _cpu_signature())
  key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
  target = cache_dir() / f"spectralgpt_kernels-{key}.so"
  if target.exists():
    return target
  try:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
  except OSError as e:
    raise KernelBuildError(f"cannot write the kernel cache {target.parent}: {e} "
                           "(set SPECTRALGPT_JAX_KERNEL_CACHE)") from e
  os.close(fd)
  absl_logging.info("compiling the CPU kernels (fused attention, BLAS GEMM) with %s into %s: "
                    "once per machine and source version", cxx, target)
  cmd = [cxx, *FLAGS, f"-I{include}", *map(str, SOURCES), *LIBS, "-o", tmp]
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode != 0:
    os.unlink(tmp)
    raise KernelBuildError(f"compiling {', '.join(p.name for p in SOURCES)} failed "
                           f"({' '.join(cmd)}):\n{result.stderr[-4000:]}")
  os.replace(tmp, target)  # atomic: other processes see no library or the whole one
  return target


@functools.cache
def register() -> ctypes.CDLL:
  """Builds, loads and registers every FFI target (first call only); raises KernelBuildError."""
  path = build()
  try:
    library = ctypes.cdll.LoadLibrary(str(path))
  except OSError as e:
    raise KernelBuildError(f"loading {path} failed: {e}") from e
  for target, symbol in TARGETS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(library, symbol)),
                                platform="cpu")
  return library  # kept alive by the cache: the registered handlers live in it


def require_registered() -> None:
  """Raises KernelBuildError unless `register()` has succeeded (never builds: called while
  tracing, where a compiler run would stall the caller without a word)."""
  if not register.cache_info().currsize:
    raise KernelBuildError("the CPU kernels are not built: call "
                           "spectralgpt_jax.kernels.build.register() (kernels.select.ops_for "
                           "does) before tracing a function that uses them")


@functools.cache
def available() -> bool:
  """Whether the kernels build and load here (logs the reason once when they do not)."""
  try:
    register()
    return True
  except KernelBuildError as e:
    _log.warning("CPU kernels unavailable, using the XLA implementations: %s", e)
    return False
