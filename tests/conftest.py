"""Shared test setup: 8 simulated CPU devices, the real Sentinel-2 example patches, and the
session fixtures of the weights tests (tests/export, tests/inference): tiny MAEs saved as
training checkpoints and their export (each built once, only when a test asks)."""

import os
import pathlib

# Must happen before jax is imported anywhere: sharding tests need a multi-device CPU mesh.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count=8").strip()

# Commands run in this process (cli([...])) leave the user's compilation cache alone; tests
# that want one set it for their subprocesses (tests/train, tests/cli).
os.environ.setdefault("SPECTRALGPT_JAX_COMPILATION_CACHE", "off")

import sys  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The official model's facts (key list); SPECTRALGPT_SPEC points elsewhere.
SPEC_DIR = pathlib.Path(os.environ.get("SPECTRALGPT_SPEC", REPO_ROOT.parent / "shared" / "spec"))
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


def _data_root(env: str, default: pathlib.Path, what: str) -> pathlib.Path:
  path = pathlib.Path(os.environ.get(env) or default)
  if not path.is_dir():
    pytest.skip(f"{what} not found at {path} (set {env} to its folder)")
  return path


@pytest.fixture(scope="session")
def oscd_root() -> pathlib.Path:
  """The OSCD subset (six cities, published layout): $SPECTRALGPT_OSCD_DATA or
  ../shared/data/oscd_s2_subset (skip when absent)."""
  return _data_root("SPECTRALGPT_OSCD_DATA", REPO_ROOT.parent / "shared" / "data" /
                    "oscd_s2_subset", "OSCD subset")


@pytest.fixture(scope="session")
def flood_root() -> pathlib.Path:
  """The Sen1Floods11 chip (S2Hand/, LabelHand/): $SPECTRALGPT_FLOOD_DATA or
  ../shared/data/sen1floods11_s2_chip (skip when absent)."""
  return _data_root("SPECTRALGPT_FLOOD_DATA", REPO_ROOT.parent / "shared" / "data" /
                    "sen1floods11_s2_chip", "Sen1Floods11 chip")


@pytest.fixture(scope="session")
def official_keys_file() -> pathlib.Path:
  """../shared/spec/official_state_dict_keys.txt, or under $SPECTRALGPT_SPEC (skip when absent)."""
  path = SPEC_DIR / "official_state_dict_keys.txt"
  if not path.exists():
    pytest.skip(f"official key list not found at {path} (set SPECTRALGPT_SPEC to the spec folder)")
  return path


@pytest.fixture(scope="session")
def ben_dir(tmp_path_factory, example_dir):
  """The six real BigEarthNet patches ingested into 2 shards (SHA256SUMS verified first)."""
  pytest.importorskip("rasterio")
  from data_pipelines import ingest
  out = tmp_path_factory.mktemp("ben")
  ingest.ingest("bigearthnet", [str(example_dir)], out, num_shards=2, verify_sha256=True)
  return str(out)


# --------------------------------------------------------------- weights fixtures
# tests/ is on sys.path (above): export_helpers and the twin are imported by name.

import jax  # noqa: E402
import numpy as np  # noqa: E402

import export_helpers as H  # noqa: E402
from spectralgpt_jax.models import transformer  # noqa: E402

TINY_MAE = H.TINY_MAE


@pytest.fixture(scope="session")
def cubes32(example_dir):
  """(raw DN, min-max normalized) real BigEarthNet cubes [6, 12, 32, 32]."""
  return H.real_cubes(example_dir, 32)


@pytest.fixture(scope="session")
def fresh_mae(tmp_path_factory, cubes32):
  """A freshly initialised tiny MAE (unrolled, unsharded, no optimizer state), saved as a
  training checkpoint. Returns (workdir, numpy params)."""
  _, x = cubes32
  params = jax.tree.map(np.asarray, H.init_params(H.build(TINY_MAE), x, seed=3))
  workdir = tmp_path_factory.mktemp("fresh_mae")
  H.write_training_checkpoint(workdir, params, model={"name": TINY_MAE}, step=0)
  return workdir, params


@pytest.fixture(scope="session")
def trained_mae(tmp_path_factory, cubes32, fresh_mae):
  """The tiny MAE trained 3 AdamW steps, saved in the scanned layout with params and optimizer
  state sharded over 8 CPU devices. Returns (workdir, unrolled numpy params)."""
  _, x = cubes32
  params, opt = H.train_briefly(H.build(TINY_MAE), fresh_mae[1], x)
  workdir = tmp_path_factory.mktemp("trained_mae")
  H.write_training_checkpoint(workdir, H.shard(transformer.to_scanned(params)),
                              opt_state=H.shard(opt),
                              model={"name": TINY_MAE, "scan": True, "remat": "none"})
  return workdir, jax.tree.map(np.asarray, params)


@pytest.fixture(scope="session")
def exported_pth(trained_mae, tmp_path_factory) -> pathlib.Path:
  from spectralgpt_jax.export import to_torch
  out = tmp_path_factory.mktemp("exported") / "tiny.pth"
  return to_torch.export_checkpoint(trained_mae[0], out).weights


@pytest.fixture(scope="session")
def exported_safetensors(trained_mae, tmp_path_factory) -> pathlib.Path:
  from spectralgpt_jax.export import to_torch
  out = tmp_path_factory.mktemp("exported") / "tiny.safetensors"
  return to_torch.export_checkpoint(trained_mae[0], out).weights


# Object-store client variables (endpoints, credentials) a test may set only for itself
# (monkeypatch or ObjectStore.environ()): left behind, they would send later tests' reads to a
# stopped server or make every rasterio open build an AWS session.
_CLOUD_VARS = ("AWS_", "STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL",
               "GOOGLE_AUTH_TOKEN_FOR_TESTING", "GCSFS_")


def _cloud_env() -> dict[str, str]:
  return {k: v for k, v in os.environ.items() if k.startswith(_CLOUD_VARS)}


@pytest.fixture(autouse=True)
def _no_leaked_cloud_env():
  before = _cloud_env()
  yield
  after = _cloud_env()
  assert after == before, (f"the test left object-store variables changed in os.environ: "
                           f"{sorted(set(before.items()) ^ set(after.items()))}")
