"""Building the package's C++ kernels for XLA:CPU (spectralgpt_jax/kernels/build.py)."""

import os
import subprocess

import jax
import pytest

from spectralgpt_jax.kernels import build


@pytest.fixture(scope="module", autouse=True)
def kernels():
  if not build.available():
    pytest.skip("the CPU kernels do not build here (no C++ compiler?)")


def test_build_is_cached_and_a_failing_compiler_is_reported(tmp_path, monkeypatch):
  first = build.build()
  assert build.build() == first  # same sources, flags and CPU: no recompilation
  monkeypatch.setenv("SPECTRALGPT_JAX_KERNEL_CACHE", str(tmp_path))
  monkeypatch.setenv("CXX", "false")  # a "compiler" that always fails
  with pytest.raises(build.KernelBuildError, match="failed"):
    build.build()
  assert list(tmp_path.iterdir()) == []  # no partial library left behind
  (tmp_path / "a_file").write_text("")
  monkeypatch.setenv("SPECTRALGPT_JAX_KERNEL_CACHE", str(tmp_path / "a_file" / "cache"))
  with pytest.raises(build.KernelBuildError, match="cannot write the kernel cache"):
    build.build()


def test_every_target_is_exported_by_the_library():
  library = build.register()
  for symbol in build.TARGETS.values():
    assert hasattr(library, symbol), symbol


@pytest.mark.parametrize("source", build.SOURCES, ids=lambda p: p.name)
def test_kernel_source_compiles_without_warnings_that_matter(source):
  """-Wall -Wextra on our sources (the FFI headers' own warnings are not ours)."""
  cmd = [build.compiler(), *build.FLAGS[:4], "-fsyntax-only", "-Wall", "-Wextra",
         "-isystem", jax.ffi.include_dir(), str(source)]
  result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
  assert result.returncode == 0, result.stderr
  ours = [l for l in result.stderr.splitlines()
          if ("simd.h" in l or source.name in l) and "warning" in l]
  assert not ours, "\n".join(ours)
