"""Damaged checkpoints: flipped bytes, deleted and truncated files. Every read reports the
step directory; resume falls back to the newest intact step (or fails, by option); export
refuses. (kill -9 during a write: test_reliability.py.)"""

import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.__main__ import main as cli

import train_util


def _state(step: int) -> dict:
  k = jax.random.key(step)
  return {"params": {"w": jax.random.normal(k, (256, 256)),
                     "b": jnp.arange(7, dtype=jnp.bfloat16) * step},
          "opt_state": {"mu": jnp.full((3,), float(step))}, "step": jnp.int32(step)}


def _abstract() -> dict:
  sh = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh), _state(0))


@pytest.fixture
def run(tmp_path):
  workdir = str(tmp_path / "w")
  mngr = ckpt.make_manager(workdir, async_save=False)
  for s in (1, 2):
    ckpt.save(mngr, s, _state(s), None, {"step": s}, force=True)
  mngr.wait_until_finished()
  mngr.close()
  return workdir


def _data_files(workdir, step):
  return sorted(glob.glob(f"{ckpt.checkpoint_dir(workdir)}/{step}/state/**/d/*", recursive=True),
                key=os.path.getsize)


def _flip(path, where=0.5):
  data = bytearray(open(path, "rb").read())
  data[int(len(data) * where)] ^= 0x10
  open(path, "wb").write(bytes(data))


def _truncate(path):
  data = open(path, "rb").read()
  open(path, "wb").write(data[:len(data) // 2])


def _manifest(workdir, step):
  return glob.glob(f"{ckpt.checkpoint_dir(workdir)}/{step}/state/**/manifest.ocdbt",
                   recursive=True)[0]


def test_intact_checkpoint_verifies(run):
  c = ckpt.read_checkpoint(run)
  assert c.step == 2
  np.testing.assert_array_equal(c.params["w"], np.asarray(_state(2)["params"]["w"]))
  assert ckpt.verify({"params": c.params}, c.path, 2)


def test_flipped_byte_in_array_data_is_caught_by_the_checksum(run):
  _flip(_data_files(run, 2)[-1])   # the largest file: the 256 KiB array's data
  step_dir = os.path.join(ckpt.checkpoint_dir(run), "2")
  with pytest.raises(ckpt.CheckpointCorruptError, match="fails its checksum") as err:
    ckpt.read_checkpoint(run)
  assert step_dir in str(err.value) and "['params']['w']" in str(err.value)
  assert ckpt.read_checkpoint(run, step=1).step == 1   # older step still reads


@pytest.mark.parametrize("damage", ["delete", "truncate", "manifest"])
def test_deleted_or_truncated_files_name_the_step(run, damage):
  if damage == "delete":
    os.remove(_data_files(run, 2)[-1])
  elif damage == "truncate":
    _truncate(_data_files(run, 2)[-1])
  else:
    os.remove(_manifest(run, 2))
  with pytest.raises(ckpt.CheckpointCorruptError) as err:
    ckpt.read_checkpoint(run)
  assert os.path.join(ckpt.checkpoint_dir(run), "2") in str(err.value)
  assert "step 2 is damaged" in str(err.value)


def test_resume_falls_back_to_the_newest_intact_step_and_keeps_the_damaged_one(run):
  _flip(_data_files(run, 2)[-1])
  mngr = ckpt.make_manager(run, async_save=False)
  with pytest.raises(ckpt.CheckpointCorruptError, match="step 2 is damaged"):
    ckpt.restore_intact(mngr, _abstract(), fallback=False)
  assert mngr.all_steps() == [1, 2]       # "fail" leaves everything where it was
  step, state, meta = ckpt.restore_intact(mngr, _abstract())
  assert step == 1 and meta == {"step": 1}
  np.testing.assert_array_equal(np.asarray(state["params"]["w"]),
                                np.asarray(_state(1)["params"]["w"]))
  assert mngr.all_steps() == [1]
  assert os.path.isdir(ckpt.checkpoint_dir(run) + ".damaged/2/state")   # kept, not deleted
  # The run can write step 2 again.
  assert ckpt.save(mngr, 2, _state(2), None, {"step": 2}, force=True)
  mngr.wait_until_finished()
  mngr.close()
  assert ckpt.read_checkpoint(run).step == 2


def test_every_step_damaged_is_an_error(run):
  for s in (1, 2):
    os.remove(_manifest(run, s))
  mngr = ckpt.make_manager(run, async_save=False)
  with pytest.raises(ckpt.CheckpointCorruptError, match="no older intact step"):
    ckpt.restore_intact(mngr, _abstract())
  mngr.close()


def test_load_params_verifies(run):
  _flip(_data_files(run, 2)[-1])
  with pytest.raises(ckpt.CheckpointCorruptError, match="fails its checksum"):
    ckpt.load_params(run)


def test_export_refuses_a_damaged_checkpoint(run, tmp_path, capsys):
  _flip(_data_files(run, 2)[-1])
  out = tmp_path / "x.safetensors"
  assert cli(["export", "--weights", run, "--out", str(out)]) == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "step 2 is damaged" in err[0], err
  assert not out.exists()


def _drop_checksums(workdir, step=2):
  import shutil
  shutil.rmtree(os.path.join(ckpt.checkpoint_dir(workdir), str(step), ckpt.CHECKSUMS))


def test_a_lost_checksum_record_is_refused_unless_allowed(run, caplog):
  """Deleting the one `checksums` folder must not turn verification off."""
  _drop_checksums(run)
  for read in (ckpt.read_checkpoint, ckpt.load_params):
    with pytest.raises(ckpt.CheckpointCorruptError,
                       match="step 2 is damaged: its checksums record is missing"):
      read(run)
  mngr = ckpt.make_manager(run, read_only=True)
  with pytest.raises(ckpt.CheckpointCorruptError, match="record is missing"):
    ckpt.restore(mngr, 2, _abstract())
  with ckpt.allow_unverified():
    got = ckpt.read_checkpoint(run)
    state, _ = ckpt.restore(mngr, 2, _abstract())
  np.testing.assert_array_equal(got.params["w"], np.asarray(_state(2)["params"]["w"]))
  np.testing.assert_array_equal(state["params"]["w"], _state(2)["params"]["w"])
  assert "restored unverified (allowed)" in caplog.text
  with pytest.raises(ckpt.CheckpointCorruptError):  # the context ended
    ckpt.read_checkpoint(run)


def test_a_step_without_orbax_step_metadata_and_checksums_is_refused(run):
  _drop_checksums(run)
  os.remove(os.path.join(ckpt.checkpoint_dir(run), "2", "_CHECKPOINT_METADATA"))
  assert ckpt.written_with_checksums(os.path.join(ckpt.checkpoint_dir(run), "2")) is None
  with pytest.raises(ckpt.CheckpointCorruptError, match="_CHECKPOINT_METADATA are missing"):
    ckpt.read_checkpoint(run)


def test_a_checkpoint_from_before_checksums_is_read_with_a_warning(tmp_path, caplog):
  """Written as the project wrote steps before checksums: state + meta items, no record and
  no checksum_format in orbax's step metadata."""
  import orbax.checkpoint as ocp
  root = tmp_path / "old" / "checkpoints"
  state = {"params": {"w": np.arange(6, dtype=np.float32)}, "step": np.int64(4)}
  with ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(
      create=True, enable_async_checkpointing=False)) as mngr:
    mngr.save(4, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                         meta=ocp.args.JsonSave({"step": 4})))
  assert ckpt.written_with_checksums(root / "4") is False
  got = ckpt.read_checkpoint(tmp_path / "old")
  np.testing.assert_array_equal(got.params["w"], state["params"]["w"])
  assert "written before checksums existed; restored unverified" in caplog.text


def test_new_steps_record_that_they_carry_checksums(run):
  step_dir = os.path.join(ckpt.checkpoint_dir(run), "2")
  import json
  meta = json.load(open(os.path.join(step_dir, "_CHECKPOINT_METADATA")))
  assert meta["custom_metadata"] == {"checksum_format": ckpt.integrity.CHECKSUM_FORMAT}
  assert ckpt.written_with_checksums(step_dir) is True


def test_checksums_equal_on_device_and_host():
  tree = _state(3)
  assert ckpt.checksums(tree) == ckpt.checksums(jax.device_get(tree))


@pytest.mark.slow
def test_training_resumes_past_a_damaged_latest_checkpoint_bit_identically(tmp_path):
  from spectralgpt_jax.train import loop
  straight = str(tmp_path / "straight")
  loop.train(train_util.tiny(), straight)             # checkpoints at 3 and 6
  damaged = str(tmp_path / "damaged")
  loop.train(train_util.tiny(), damaged)
  _flip(_data_files(damaged, 6)[-1])
  with pytest.raises(ckpt.CheckpointCorruptError, match="step 6 is damaged"):
    loop.train(train_util.tiny(**{"checkpoint.on_corrupt": "fail"}), damaged)
  loop.train(train_util.tiny(), damaged)              # falls back to 3, retrains 4..6
  assert os.path.isdir(ckpt.checkpoint_dir(damaged) + ".damaged/6")
  a, b = ckpt.read_checkpoint(straight), ckpt.read_checkpoint(damaged)
  assert a.step == b.step == 6
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(x, y)
