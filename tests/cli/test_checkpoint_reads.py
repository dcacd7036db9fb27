"""`export` and `embed` on a saved checkpoint, as real processes: their stderr carries no orbax
"Metadata file does not exist" line (or any warning) when the checkpoint is intact; a step that
lost its checksum record is refused in one line, and read with a visible warning under
`--allow_unverified`."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import export_helpers as H
from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.models import get_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny MAE written as the training loop writes it (with checksums)."""
  workdir = tmp_path_factory.mktemp("run")
  params = H.random_params(get_model(H.TINY_MAE))
  ckpt.write_checkpoint(workdir / "checkpoints", params, {
      "model": {"name": H.TINY_MAE}, "bands": H.BANDS, "normalization": H.NORMALIZATION},
      step=3)
  return workdir


def _cli(*args):
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
      REPO, os.environ.get("PYTHONPATH", "")])), "SPECTRALGPT_JAX_COMPILATION_CACHE": "off"}
  return subprocess.run([sys.executable, "-m", "spectralgpt_jax", *map(str, args)], env=env,
                        capture_output=True, text=True, timeout=600, cwd=REPO)


def test_export_and_embed_print_no_orbax_metadata_warning(run, tmp_path, example_dir):
  pytest.importorskip("rasterio")
  res = _cli("export", "--weights", run, "--out", tmp_path / "w.safetensors")
  assert res.returncode == 0, res.stderr
  assert "Metadata file does not exist" not in res.stderr
  assert "WARNING" not in res.stderr, res.stderr
  res = _cli("embed", "--weights", run, "--input", example_dir, "--out", tmp_path / "e.npy")
  assert res.returncode == 0, res.stderr
  assert "Metadata file does not exist" not in res.stderr
  assert "WARNING" not in res.stderr, res.stderr
  assert np.load(tmp_path / "e.npy").shape == (6, 64)


def test_lost_checksum_record_is_refused_then_read_with_a_warning(run, tmp_path):
  broken = tmp_path / "broken"
  shutil.copytree(run, broken)
  shutil.rmtree(broken / "checkpoints" / "3" / ckpt.CHECKSUMS)
  res = _cli("export", "--weights", broken, "--out", tmp_path / "w.pth")
  lines = res.stderr.strip().splitlines()
  assert res.returncode == 1 and len(lines) == 1, res.stderr
  assert lines[0].startswith("export failed: ") and "checksums record is missing" in lines[0]
  assert "--allow_unverified" in lines[0] and not (tmp_path / "w.pth").exists()
  res = _cli("export", "--weights", broken, "--out", tmp_path / "w.pth", "--allow_unverified")
  assert res.returncode == 0, res.stderr
  assert "restored unverified (allowed)" in res.stderr   # a real warning still shows
  assert "Metadata file does not exist" not in res.stderr
