"""Every test in tests/kernels builds or runs the C++ kernels: marked `kernels`, so the core
suite runs without a compiler (`pytest -m "not kernels"`)."""

import pytest


def pytest_collection_modifyitems(items):
  for item in items:
    if "/tests/kernels/" in str(item.fspath):
      item.add_marker(pytest.mark.kernels)
