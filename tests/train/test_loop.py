"""The training loop end to end on 8 simulated devices with the tiny config.

Checkpoint layout and meta contract, TensorBoard scalars and images, reconstruction PNGs,
SIGTERM -> checkpoint -> resume bit-identical to an uninterrupted run, restore onto another
mesh, init_from (params only), and the non-finite guard (skip, then stop with a checkpoint).
"""

import os
import signal
import struct

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from data_pipelines import pipeline as data_lib, synthetic
from spectralgpt_jax.sharding import mesh as mesh_lib, rules as rules_lib
from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.train import loop, model_state, optim, periodic

import train_util


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
  """6 steps, checkpoints at 3 and 6, panels at 3 and 6."""
  workdir = str(tmp_path_factory.mktemp("run") / "w")
  config = train_util.tiny(**{"log.panel_every_steps": 3})
  last = loop.train(config, workdir)
  return workdir, config, last


def _params(workdir, step=None):
  return jax.device_get(ckpt.load_params(workdir, step))


def test_checkpoints_meta_tensorboard_and_panels(first_run):
  workdir, config, last = first_run
  assert last["step"] == 6 and np.isfinite(last["loss"])
  mngr = ckpt.make_manager(workdir, read_only=True)
  assert mngr.all_steps() == [3, 6]
  for item in ("state", "data_iter", "meta"):
    assert os.path.isdir(os.path.join(ckpt.checkpoint_dir(workdir), "6", item))
  meta = ckpt.read_meta(workdir)
  assert meta["model"] == {"name": "mae_vit_tiny_patch8_32", "img_size": 32, "dtype": "float32",
                           "scan": True, "remat": "none", "num_dates": 1,
                           "spectral_positions": "table"}  # no implementations
  assert meta["bands"][:4] == ["B01", "B02", "B03", "B04"] and len(meta["bands"]) == 12
  assert meta["normalization"]["mode"] == "minmax"
  assert meta["config"]["total_steps"] == 6 and meta["config"]["optim"]["b2"] == 0.95
  tree = ocp.PyTreeCheckpointer().metadata(
      os.path.join(ckpt.checkpoint_dir(workdir), "6", "state")).item_metadata.tree
  assert set(tree) == {"params", "opt_state", "step"}

  scalars, images = train_util.read_events(os.path.join(workdir, "tensorboard"))
  for tag in ("loss", "loss_mse", "loss_spectral", "grad_norm", "param_norm", "update_norm",
              "lr", "images_per_sec", "mfu"):
    assert tag in scalars, tag
  assert [s for s, _ in scalars["loss"]] == list(range(1, 7))
  assert [s for s, _, _ in images["reconstruction"]] == [3, 6]
  for step in (3, 6):
    png = open(os.path.join(workdir, "panels", f"step_{step:07d}.png"), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert (h, w) == tuple(images["reconstruction"][0][1:])


class _SigtermAt(grain.DatasetIterator):
  """Delegating iterator that sends this process SIGTERM when batch number `at` is taken."""

  def __init__(self, it, at):
    super().__init__()
    self._it, self._at, self._n = it, at, 0

  def __next__(self):
    self._n += 1
    if self._n == self._at:
      assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None), "no handler"
      os.kill(os.getpid(), signal.SIGTERM)
    return next(self._it)

  def get_state(self):
    return self._it.get_state()

  def set_state(self, state):
    self._it.set_state(state)


def test_sigterm_checkpoints_then_resume_is_bit_identical(first_run, tmp_path, monkeypatch):
  straight, config, _ = first_run  # the same run, uninterrupted (its panels do not touch state)
  stopped = str(tmp_path / "stopped")
  make = data_lib.make_iterator
  monkeypatch.setattr(data_lib, "make_iterator", lambda *a, **k: _SigtermAt(make(*a, **k), 4))
  last = loop.train(config, stopped)
  assert last["step"] == 4 and ckpt.latest_step(stopped) == 4  # forced save at the stop
  assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL     # handler restored
  monkeypatch.setattr(data_lib, "make_iterator", make)
  assert loop.train(config, stopped)["step"] == 6
  a, b = _params(straight), _params(stopped)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


def test_restore_onto_a_different_mesh(first_run):
  workdir, config, _ = first_run
  model = model_state.build_model(config.model)
  tx, _ = optim.make_optimizer(config.optim, config.total_steps)
  states = []
  for mesh_cfg, preset, devices in (({"data": 1, "fsdp": -1, "tensor": 1}, "fsdp", None),
                                    ({"data": 1, "fsdp": 1, "tensor": -1}, "fsdp_tp",
                                     jax.devices()[:2])):
    mesh = mesh_lib.make_mesh(mesh_cfg, devices)
    abstract, shardings = model_state.state_shardings(model, tx, mesh, rules_lib.get_rules(preset))
    state, _ = ckpt.restore(ckpt.make_manager(workdir, read_only=True), 6, abstract)
    q = state.params["blocks"]["layers"]["attn"]["q"]["kernel"]
    assert q.sharding == shardings.params["blocks"]["layers"]["attn"]["q"]["kernel"]
    states.append(jax.device_get(state))
  assert len(jax.tree.leaves(states[0])) == len(jax.tree.leaves(states[1]))
  for x, y in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(x, y)


def test_init_from_loads_params_only(first_run, tmp_path):
  source, _, _ = first_run
  config = train_util.tiny(**{"init_from.workdir": source})
  workdir = str(tmp_path / "stage2")
  loop.train(config, workdir)
  assert ckpt.read_meta(workdir)["config"]["init_from"]["workdir"] == source
  state = ckpt.make_manager(workdir, read_only=True).restore(6, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(None)))["state"]
  # A fresh optimizer (6 updates here, not 6 + the source's 6) around the source's params.
  assert int(state["step"]) == 6 and int(state["opt_state"]["inner"][0][0]["count"]) == 6
  before, after = _params(source, 6), _params(workdir, 6)
  diffs = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))]
  assert max(diffs) <= 6.5 * config.optim.lr  # six AdamW steps away from the source


def test_nonfinite_steps_are_skipped_then_training_stops(tmp_path, monkeypatch):
  original = synthetic.SyntheticBatch.map
  poison = {"steps": {1}}

  def poisoned(self, step):
    out = original(self, step)
    if int(step) in poison["steps"]:
      out["cube"][0, 0, 0, 0] = np.nan
    return out

  monkeypatch.setattr(synthetic.SyntheticBatch, "map", poisoned)
  workdir = str(tmp_path / "skip")
  last = loop.train(train_util.tiny(), workdir)
  assert last["step"] == 6 and last["skipped_total"] == 1
  scalars, _ = train_util.read_events(os.path.join(workdir, "tensorboard"))
  assert dict(scalars["skipped"])[2] == 1.0 and dict(scalars["skipped"])[3] == 0.0
  assert np.isnan(dict(scalars["loss"])[2])

  poison["steps"] = set(range(2, 100))
  workdir = str(tmp_path / "stop")
  with pytest.raises(periodic.TrainingDiverged, match="3 consecutive non-finite"):
    loop.train(train_util.tiny(**{"max_nonfinite_streak": 3}), workdir)
  latest = ckpt.latest_step(workdir)
  assert latest is not None and latest >= 5
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(_params(workdir)))
