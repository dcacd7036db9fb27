"""Fixtures shared by the weights-in/out tests (session scoped: each is built once)."""

import pathlib

import jax
import numpy as np
import pytest

import export_helpers as H
from spectralgpt_jax.models.transformer import to_scanned

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
  H.write_training_checkpoint(workdir, H.shard(to_scanned(params)),
                              opt_state=H.shard(opt),
                              model={"name": TINY_MAE, "scan": True, "remat": "none"})
  return workdir, jax.tree.map(np.asarray, params)


@pytest.fixture(scope="session")
def exported_pth(trained_mae, tmp_path_factory) -> pathlib.Path:
  from spectralgpt_jax.export import to_torch
  out = tmp_path_factory.mktemp("exported") / "tiny.pth"
  return to_torch.export_checkpoint(trained_mae[0], out).weights
