"""The AOT compile tests: the CUDA plugin must only see the host backend (set before jax loads)."""

import os

os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
try:
  import importlib.util
  if importlib.util.find_spec("jax_plugins.xla_cuda12") is not None:
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
except ModuleNotFoundError:
  pass
