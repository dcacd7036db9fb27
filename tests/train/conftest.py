"""Fixtures for the training tests: absl flags and a shared compilation cache."""

import pytest

from data_pipelines import absl_flags


@pytest.fixture(scope="session", autouse=True)
def _absl_flags_parsed():
  absl_flags.ensure_parsed()  # grain reads absl flags; pytest never parses them


@pytest.fixture(scope="session")
def jax_cache_dir(tmp_path_factory) -> str:
  """A persistent XLA compilation cache for this session, shared with subprocesses (env)."""
  return str(tmp_path_factory.mktemp("jax_cache"))


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(jax_cache_dir):
  # Loops and subprocesses compile the same tiny programs again and again; on 2 shared cores
  # the cache is what keeps this suite within minutes. It does not change results. Set per
  # module and undone afterwards, so other test folders run as they would alone.
  import jax
  from jax._src import compilation_cache  # reset: jax decides once whether a cache is used
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
           "jax_persistent_cache_min_entry_size_bytes")
  before = {n: getattr(jax.config, n) for n in names}
  for name, value in zip(names, (jax_cache_dir, 0, 0)):
    jax.config.update(name, value)
  compilation_cache.reset_cache()
  yield
  for name, value in before.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()
