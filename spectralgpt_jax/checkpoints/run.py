"""The run's manager (state, grain iterator state, meta) and params-only reads onto shardings."""

from __future__ import annotations

import os
from typing import Any, Mapping

import grain
import jax
from absl import logging
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import NamedSharding, PartitionSpec as P

from spectralgpt_jax.checkpoints.integrity import (CheckpointCorruptError, checksum_item,
                                                   step_custom_metadata, verify)
from spectralgpt_jax.checkpoints.layout import (CHECKSUMS, DAMAGED_SUFFIX, DATA_ITER, META, STATE,
                                                PyTree, checkpoint_dir, state_metadata)


# --- The run's manager: state + data iterator + meta. ----------------------------------------

def make_manager(workdir: str | os.PathLike, *, max_to_keep: int | None = 3,
                 async_save: bool = True, read_only: bool = False) -> ocp.CheckpointManager:
  """The run's CheckpointManager on `<workdir>/checkpoints` (`save` decides the interval)."""
  # read_only: a manager that writes nothing (orbax's own read_only mode logs warnings).
  options = ocp.CheckpointManagerOptions(
      max_to_keep=None if read_only else max_to_keep, create=not read_only,
      enable_async_checkpointing=async_save and not read_only,
      cleanup_tmp_directories=not read_only)
  handlers = {STATE: ocp.StandardCheckpointHandler(), META: ocp.JsonCheckpointHandler(),
              CHECKSUMS: ocp.JsonCheckpointHandler(),
              DATA_ITER: grain.checkpoint.CheckpointHandler()}
  return ocp.CheckpointManager(checkpoint_dir(workdir), options=options, item_handlers=handlers)


def _as_dict(state: Any) -> PyTree:
  return state.to_dict() if hasattr(state, "to_dict") else state


def save(mngr: ocp.CheckpointManager, step: int, state: Any, data_iter,
         meta: Mapping[str, Any], *, every_steps: int = 1, force: bool = False) -> bool:
  """Saves `state` (a dict or `.to_dict()`-able; its step must equal `step`), the grain
  iterator (unless None) and `meta`, asynchronously if the manager is, when `force` or step
  is a multiple of `every_steps`. Returns whether it saved (cheap to call every step)."""
  if (not force and step % every_steps) or step in mngr.all_steps():
    return False
  tree = _as_dict(state)
  items = {STATE: ocp.args.StandardSave(tree), META: ocp.args.JsonSave(dict(meta)),
           CHECKSUMS: ocp.args.JsonSave(checksum_item(tree))}
  if data_iter is not None:
    items[DATA_ITER] = grain.checkpoint.CheckpointSave(data_iter)
  return mngr.save(step, args=ocp.args.Composite(**items), force=True,
                   custom_metadata=step_custom_metadata())


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any,
            data_iter=None) -> tuple[Any, dict[str, Any]]:
  """Restores `step` onto the shardings in `abstract_state` (ShapeDtypeStructs with sharding;
  any mesh works, not only the one it was saved from). `data_iter` is repositioned in place.

  Returns (state, meta); state has the type of `abstract_state` if that has `from_dict`.
  Raises CheckpointCorruptError when the step cannot be read or fails its checksums.
  """
  items = {STATE: ocp.args.StandardRestore(_as_dict(abstract_state)),
           META: ocp.args.JsonRestore()}
  if data_iter is not None:
    items[DATA_ITER] = grain.checkpoint.CheckpointRestore(data_iter)
  step_dir = epath.Path(mngr.directory) / str(step)
  try:
    out = mngr.restore(step, args=ocp.args.Composite(**items))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorruptError(step_dir, step, f"orbax cannot read it "
                                 f"({type(e).__name__}: {str(e)[:300]})") from e
  verify(out[STATE], step_dir, step)
  state = out[STATE]
  if hasattr(abstract_state, "from_dict"):
    state = type(abstract_state).from_dict(state)
  return state, out[META]


def restore_intact(mngr: ocp.CheckpointManager, abstract_state: Any, data_iter=None, *,
                   fallback: bool = True) -> tuple[int, Any, dict[str, Any]] | None:
  """Restores the newest step that reads and verifies: (step, state, meta), None if none exist.

  A damaged step is logged with its directory and reason, then (with `fallback`) moved to
  `<checkpoints>.damaged/<step>` (kept, not deleted: the run can save that step again) and
  the next older step is tried. Without `fallback`, or when every step is damaged, raises
  CheckpointCorruptError."""
  damaged: list[CheckpointCorruptError] = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      state, meta = restore(mngr, step, abstract_state, data_iter)
    except CheckpointCorruptError as e:
      logging.error("%s", e)
      if not fallback:
        raise CheckpointCorruptError(e.step_dir, e.step, e.what + "; resume from an older step "
                                     "with checkpoint.on_corrupt='fallback'") from e
      damaged.append(e)
      _set_aside(mngr, step)
      continue
    if damaged:
      logging.warning("resumed from step %d: newer step(s) %s were damaged and moved to %s",
                      step, [e.step for e in damaged], str(mngr.directory) + DAMAGED_SUFFIX)
    return step, state, meta
  if damaged:
    raise CheckpointCorruptError(damaged[0].step_dir, damaged[0].step,
                                 f"{damaged[0].what}; and no older intact step exists "
                                 f"(damaged: {[e.step for e in damaged]})")
  return None


def _set_aside(mngr: ocp.CheckpointManager, step: int) -> None:
  src = epath.Path(mngr.directory) / str(step)
  dst_root = epath.Path(str(mngr.directory) + DAMAGED_SUFFIX)
  if jax.process_index() == 0:
    dst_root.mkdir(parents=True, exist_ok=True)
    dst = dst_root / str(step)
    n = 1
    while dst.exists():
      dst, n = dst_root / f"{step}.{n}", n + 1
    src.rename(dst)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(f"checkpoint step {step} set aside")
  mngr.reload()


def latest_step(workdir: str | os.PathLike) -> int | None:
  """Latest committed step of the run at `workdir`, or None."""
  if not epath.Path(checkpoint_dir(workdir)).is_dir():
    return None
  return make_manager(workdir, read_only=True).latest_step()


def read_meta(workdir: str | os.PathLike, step: int | None = None) -> dict[str, Any]:
  """The meta JSON of `step` (default: latest) of the run at `workdir`."""
  mngr = make_manager(workdir, read_only=True)
  step = mngr.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"no committed checkpoint in {checkpoint_dir(workdir)}")
  return mngr.restore(step, args=ocp.args.Composite(**{META: ocp.args.JsonRestore()}))[META]


# --- Params only, onto shardings (init_from). -------------------------------------------------

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
  return state_metadata(path)["params"]


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
  step_dir = epath.Path(path).parent
  try:
    out = ocp.PyTreeCheckpointer().restore(path, args=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorruptError(step_dir, int(step_dir.name), f"orbax cannot read it "
                                 f"({type(e).__name__}: {str(e)[:300]})") from e
  verify({"params": out["params"]}, step_dir, int(step_dir.name))
  return out["params"]


