"""Shared test setup: 8 simulated CPU devices, the real Sentinel-2 example patches, markers."""

import os
import pathlib

# Must happen before jax is imported anywhere: sharding tests need a multi-device CPU mesh.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8").strip()

import sys  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC_DIR = REPO_ROOT.parent / "shared" / "spec"
# Test helpers (the PyTorch twin, parity utilities) live in tests/ and are imported by name.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def _example_dir() -> pathlib.Path:
  env = os.environ.get("SPECTRALGPT_EXAMPLE_DATA")
  if env:
    return pathlib.Path(env)
  return REPO_ROOT.parent / "shared" / "data" / "bigearthnet_s2_example"


@pytest.fixture(scope="session")
def example_dir() -> pathlib.Path:
  """The six real BigEarthNet-S2 patches shipped in ../shared/data (skip when absent)."""
  path = _example_dir()
  if not (path / "SHA256SUMS.txt").exists():
    pytest.skip(f"real example patches not found at {path} "
                "(set SPECTRALGPT_EXAMPLE_DATA to the bigearthnet_s2_example folder)")
  return path


@pytest.fixture(scope="session")
def official_keys_file() -> pathlib.Path:
  """../shared/spec/official_state_dict_keys.txt (skip when absent)."""
  path = SPEC_DIR / "official_state_dict_keys.txt"
  if not path.exists():
    pytest.skip(f"official key list not found at {path}")
  return path
