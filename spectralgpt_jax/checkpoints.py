"""Orbax checkpoints of a run, `<workdir>/checkpoints/<step>/{state, data_iter, meta}`.

Layout contract (written by training, read by `export`, `inference` and `init_from`):
  state      pytree dict {"params": unboxed Flax params, "opt_state": optax state, "step": int}
  data_iter  grain iterator state (one JSON file per process)
  meta       JSON {"config": config.to_dict(), "model": {"name", **get_model kwargs},
                   "bands": [...], "normalization": {...}, "counters": {...}}
Step N holds the state after N optimizer updates; the iterator then yields batch N next.
Orbax writes each step into a temporary folder and commits it by rename, so a crash mid-write
leaves no step that `latest_step` would choose.

  make_manager / save / restore          the run's manager; state + iterator + meta
  latest_step / read_meta                 what a run directory holds
  params_metadata / load_params           params only, onto given shardings (init_from)
  read_checkpoint / write_checkpoint      params + meta on the host, no mesh (export, import)

`save`/`restore` take the state as a dict, or as an object with `to_dict()` (and a
`from_dict` classmethod, which `restore` then uses to rebuild it).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from typing import Any, Mapping

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import NamedSharding, PartitionSpec as P

CHECKPOINTS_SUBDIR = "checkpoints"
STATE, DATA_ITER, META = "state", "data_iter", "meta"
PyTree = Any


def absolute(path: str | os.PathLike) -> str:
  """Absolute local path (orbax rejects relative ones); URLs (gs://...) are kept as they are."""
  path = str(path)
  return path if "://" in path else os.path.abspath(path)


def checkpoint_dir(workdir: str | os.PathLike) -> str:
  """`<workdir>/checkpoints`, absolute."""
  return str(epath.Path(absolute(workdir)) / CHECKPOINTS_SUBDIR)


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
  items = {STATE: ocp.args.StandardSave(_as_dict(state)), META: ocp.args.JsonSave(dict(meta))}
  if data_iter is not None:
    items[DATA_ITER] = grain.checkpoint.CheckpointSave(data_iter)
  return mngr.save(step, args=ocp.args.Composite(**items), force=True)


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any,
            data_iter=None) -> tuple[Any, dict[str, Any]]:
  """Restores `step` onto the shardings in `abstract_state` (ShapeDtypeStructs with sharding;
  any mesh works, not only the one it was saved from). `data_iter` is repositioned in place.

  Returns (state, meta); state has the type of `abstract_state` if that has `from_dict`.
  """
  items = {STATE: ocp.args.StandardRestore(_as_dict(abstract_state)),
           META: ocp.args.JsonRestore()}
  if data_iter is not None:
    items[DATA_ITER] = grain.checkpoint.CheckpointRestore(data_iter)
  out = mngr.restore(step, args=ocp.args.Composite(**items))
  state = out[STATE]
  if hasattr(abstract_state, "from_dict"):
    state = type(abstract_state).from_dict(state)
  return state, out[META]


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


def _state_metadata(path: str | os.PathLike) -> PyTree:
  """Tree of ArrayMetadata (shape, dtype) of a saved `state` item."""
  meta = ocp.PyTreeCheckpointer().metadata(path)
  return meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta.tree


def params_metadata(workdir: str, step: int | None = None) -> PyTree:
  """Tree of ArrayMetadata (shape, dtype) of the params saved at `step` (default latest)."""
  path, _ = _state_path(workdir, step)
  return _state_metadata(path)["params"]


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


# --- Host-side read and write, no mesh (export, import, inference). -------------------------

@dataclasses.dataclass
class CheckpointContents:
  """What `read_checkpoint` returns.

  Attributes:
    params: nested dict of numpy arrays (Flax layout, scanned or unrolled as saved).
    meta: the `meta` JSON item ({} when the checkpoint has none).
    step: the training step (the step directory's number).
    path: the step directory.
  """

  params: dict
  meta: dict
  step: int
  path: pathlib.Path


def _is_step_dir(path: pathlib.Path) -> bool:
  return path.name.isdigit() and (path / STATE).is_dir()


def resolve(path: str | os.PathLike, step: int | None = None) -> tuple[pathlib.Path, int]:
  """(CheckpointManager root, step) for a workdir, a manager root or one step directory.

  Without `step`, the latest step is used. Raises FileNotFoundError naming what is missing.
  """
  path = pathlib.Path(path).expanduser().resolve()
  if not path.is_dir():
    raise FileNotFoundError(f"{path}: checkpoint directory not found")
  if _is_step_dir(path):
    if step is not None and step != int(path.name):
      raise ValueError(f"{path} is the directory of step {path.name}, but step {step} was asked")
    return path.parent, int(path.name)
  root = path / CHECKPOINTS_SUBDIR if (path / CHECKPOINTS_SUBDIR).is_dir() else path
  steps = sorted(int(p.name) for p in root.iterdir() if _is_step_dir(p))
  if not steps:
    raise FileNotFoundError(f"{root}: no orbax checkpoint steps (<step>/{STATE}) found")
  if step is None:
    return root, steps[-1]
  if step not in steps:
    raise FileNotFoundError(f"{root}: step {step} not found; available steps {steps}")
  return root, step


def _unbox(tree: Any) -> Any:
  """Strips flax `Partitioned` boxes, saved as {"value": leaf} (+ static names)."""
  if isinstance(tree, Mapping):
    if "value" in tree and set(tree) <= {"value", "names", "mesh"}:
      return _unbox(tree["value"])
    return {k: _unbox(v) for k, v in tree.items()}
  return tree


def _params_path(tree: Mapping, where: pathlib.Path) -> tuple[str, ...]:
  """Path of the params inside the saved state tree."""
  if not isinstance(tree, Mapping) or "params" not in tree:
    keys = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
    raise KeyError(f"{where}: the state item has no 'params' entry (top-level keys: {keys})")
  sub = tree["params"]
  if isinstance(sub, Mapping) and set(sub) == {"params"}:  # variables dict saved whole
    return ("params", "params")
  return ("params",)


def _get(tree: Mapping, path: tuple[str, ...]) -> Any:
  for p in path:
    tree = tree[p]
  return tree


def _nest(path: tuple[str, ...], value: Any) -> dict:
  for p in reversed(path):
    value = {p: value}
  return value


def read_checkpoint(path: str | os.PathLike, step: int | None = None) -> CheckpointContents:
  """Restores params (numpy, host memory) and meta of one checkpoint step; no mesh needed.

  Works whatever sharding or device count the checkpoint was saved with and never reads the
  optimizer state. Params come back as stored (scanned or unrolled)."""
  root, step = resolve(path, step)
  step_dir = root / str(step)
  try:
    tree = _state_metadata(step_dir / STATE)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{step_dir / STATE}: unreadable orbax state item: {e}") from e
  ppath = _params_path(tree, step_dir / STATE)
  is_array = lambda x: hasattr(x, "shape") and hasattr(x, "dtype")
  pmeta = _get(tree, ppath)
  leaves = jax.tree.leaves(pmeta, is_leaf=is_array)
  if not leaves or not all(is_array(x) for x in leaves):
    raise ValueError(f"{step_dir / STATE}: 'params' holds no arrays")
  item = _nest(ppath, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), pmeta,
                                   is_leaf=is_array))
  if is_array(tree.get("step")):
    item["step"] = jax.ShapeDtypeStruct(tree["step"].shape, tree["step"].dtype)
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
  items = {STATE: ocp.args.PyTreeRestore(item=item, restore_args=restore_args,
                                         partial_restore=True)}
  if (step_dir / META).is_dir():
    items[META] = ocp.args.JsonRestore()
  with ocp.CheckpointManager(root) as mngr:
    restored = mngr.restore(step, args=ocp.args.Composite(**items))
  params = _unbox(_get(restored[STATE], ppath))
  meta = dict(restored[META]) if META in items and restored[META] is not None else {}
  return CheckpointContents(params=params, meta=meta, step=step, path=step_dir)


def write_checkpoint(root: str | os.PathLike, params: Mapping, meta: Mapping, *, step: int = 0,
                     extra_state: Mapping | None = None, force: bool = False) -> pathlib.Path:
  """Writes `<root>/<step>/{state, meta}` with state = {"params", "step", **extra_state}.

  `root` becomes a CheckpointManager directory (made absolute). An existing step is only
  replaced with `force`. Returns the step directory.
  """
  root = pathlib.Path(root).expanduser().resolve()
  step_dir = root / str(step)
  if step_dir.exists():
    if not force:
      raise FileExistsError(f"{step_dir} exists; pass --force (force=True) to overwrite it")
    shutil.rmtree(step_dir)
  state = {"params": params, "step": np.asarray(step, np.int64), **(extra_state or {})}
  options = ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False)
  with ocp.CheckpointManager(root, options=options) as mngr:
    mngr.save(step, args=ocp.args.Composite(**{STATE: ocp.args.StandardSave(state),
                                               META: ocp.args.JsonSave(dict(meta))}), force=True)
    mngr.wait_until_finished()
  return step_dir
