"""Orbax checkpoints of a run: `<workdir>/checkpoints/<step>/{state, data_iter, meta}`.

Layout contract (read by `spectralgpt_jax.export` and `inference`):
  state      pytree dict {"params": unboxed Flax params, "opt_state": optax state, "step": int32}
  data_iter  grain iterator state (one JSON file per process)
  meta       JSON {"config": config.to_dict(), "model": {"name", **get_model kwargs},
                   "bands": [...], "normalization": {...}, "counters": {...}}
Step N holds the state after N optimizer updates; the iterator then yields batch N next.
Orbax writes each step into a temporary folder and commits it by rename, so a crash mid-write
leaves no step that `latest_step` would choose (the temporary folder is cleaned up next time).
"""

from __future__ import annotations

import os
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import NamedSharding, PartitionSpec as P

from spectralgpt_jax.train.state import TrainState

STATE, DATA_ITER, META = "state", "data_iter", "meta"
PyTree = Any


def absolute(path: str) -> str:
  """Absolute local path (orbax rejects relative ones); URLs (gs://...) are kept as they are."""
  path = str(path)
  return path if "://" in path else os.path.abspath(path)


def checkpoint_dir(workdir: str) -> str:
  """`<workdir>/checkpoints`, absolute."""
  return str(epath.Path(absolute(workdir)) / "checkpoints")


def make_manager(workdir: str, *, max_to_keep: int | None = 3, async_save: bool = True,
                 read_only: bool = False) -> ocp.CheckpointManager:
  """The run's CheckpointManager (the save interval is decided by `save`)."""
  # read_only: a manager that writes nothing (orbax's own read_only mode logs warnings).
  options = ocp.CheckpointManagerOptions(
      max_to_keep=None if read_only else max_to_keep, create=not read_only,
      enable_async_checkpointing=async_save and not read_only,
      cleanup_tmp_directories=not read_only)
  handlers = {STATE: ocp.StandardCheckpointHandler(), META: ocp.JsonCheckpointHandler(),
              DATA_ITER: grain.checkpoint.CheckpointHandler()}
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


def save(mngr: ocp.CheckpointManager, step: int, state: TrainState, data_iter,
         meta: dict[str, Any], *, every_steps: int = 1, force: bool = False) -> bool:
  """Saves `state` (whose step must equal `step`) asynchronously if `force` or step is a
  multiple of `every_steps`; returns whether it saved (cheap to call every step)."""
  if (not force and step % every_steps) or step in mngr.all_steps():
    return False
  items = {STATE: ocp.args.StandardSave(state.to_dict()), META: ocp.args.JsonSave(meta)}
  if data_iter is not None:
    items[DATA_ITER] = grain.checkpoint.CheckpointSave(data_iter)
  return mngr.save(step, args=ocp.args.Composite(**items), force=True)


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: TrainState,
            data_iter=None) -> tuple[TrainState, dict[str, Any]]:
  """Restores `step` onto the shardings in `abstract_state` (ShapeDtypeStructs with sharding;
  any mesh works, not only the one it was saved from). `data_iter` is repositioned in place."""
  items = {STATE: ocp.args.StandardRestore(abstract_state.to_dict()),
           META: ocp.args.JsonRestore()}
  if data_iter is not None:
    items[DATA_ITER] = grain.checkpoint.CheckpointRestore(data_iter)
  out = mngr.restore(step, args=ocp.args.Composite(**items))
  return TrainState.from_dict(out[STATE]), out[META]


def latest_step(workdir: str) -> int | None:
  """Latest committed step of the run at `workdir`, or None."""
  if not epath.Path(checkpoint_dir(workdir)).is_dir():
    return None
  return make_manager(workdir, read_only=True).latest_step()


def read_meta(workdir: str, step: int | None = None) -> dict[str, Any]:
  """The meta JSON of `step` (default: latest) of the run at `workdir`."""
  mngr = make_manager(workdir, read_only=True)
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"no committed checkpoint in {checkpoint_dir(workdir)}")
  return mngr.restore(step, args=ocp.args.Composite(**{META: ocp.args.JsonRestore()}))[META]


def _state_path(workdir: str, step: int | None) -> tuple[str, int]:
  if step is None or step < 0:
    step = latest_step(workdir)
    if step is None:
      raise FileNotFoundError(f"config.init_from: no committed checkpoint in "
                              f"{checkpoint_dir(workdir)}")
  path = epath.Path(checkpoint_dir(workdir)) / str(step) / STATE
  if not path.is_dir():
    raise FileNotFoundError(f"config.init_from: {path} does not exist")
  return str(path), step


def params_metadata(workdir: str, step: int | None = None) -> PyTree:
  """Tree of ArrayMetadata (shape, dtype) of the params saved at `step` (default latest)."""
  path, _ = _state_path(workdir, step)
  meta = ocp.PyTreeCheckpointer().metadata(path)
  tree = meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta.tree
  return tree["params"]


def load_params(workdir: str, step: int | None = None, shardings: PyTree | None = None,
                mesh: jax.sharding.Mesh | None = None) -> PyTree:
  """Only the params of another run (partial restore: optimizer state is never read).

  `shardings`: tree of shardings matching the saved params; default replicated on `mesh` (or
  on the first device)."""
  path, _ = _state_path(workdir, step)
  saved = params_metadata(workdir, step)
  if shardings is None:
    sh = (NamedSharding(mesh, P()) if mesh is not None
          else jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    shardings = jax.tree.map(lambda _: sh, saved)
  target = {"params": jax.tree.map(lambda m, s: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=s),
                                   saved, shardings)}
  out = ocp.PyTreeCheckpointer().restore(path, args=ocp.args.PyTreeRestore(
      item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
      partial_restore=True))
  return out["params"]
