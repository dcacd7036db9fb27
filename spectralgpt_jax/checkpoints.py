"""Orbax checkpoints of a run, `<workdir>/checkpoints/<step>/{state, data_iter, meta}`.

Layout contract (written by training, read by `export`, `inference` and `init_from`):
  state      pytree dict {"params": unboxed Flax params, "opt_state": optax state, "step": int}
  data_iter  grain iterator state (one JSON file per process)
  meta       JSON {"config": config.to_dict(), "model": {"name", **get_model kwargs},
                   "bands": [...], "normalization": {...}, "counters": {...}}
Step N holds the state after N optimizer updates; the iterator then yields batch N next.
  checksums  JSON {"format", "arrays": {leaf path: [sum, weighted sum]}} of every saved array
Orbax writes each step into a temporary folder and commits it by rename, so a crash mid-write
leaves no step that `latest_step` would choose; `checksums` is committed with the step.

Integrity: orbax/tensorstore checksum only the chunk index, so a flipped byte in array data
restores silently. Each save records two 32-bit sums per array (of its bits as uint32 words:
plain, and weighted by position), computed on the devices (no host copy; sharded and
multi-host arrays alike); every restore and read recomputes them and raises
`CheckpointCorruptError` naming the step directory and array on a mismatch (or when orbax
cannot read the step at all). `restore_intact` falls back to the newest intact step. Steps
written before checksums existed are restored with a warning.

  make_manager / save / restore          the run's manager; state + iterator + meta
  restore_intact                          newest step that verifies (damaged ones set aside)
  latest_step / read_meta                 what a run directory holds
  params_metadata / load_params           params only, onto given shardings (init_from)
  read_checkpoint / write_checkpoint      params + meta on the host, no mesh (export, import)

`save`/`restore` take the state as a dict, or as an object with `to_dict()` (and a
`from_dict` classmethod, which `restore` then uses to rebuild it).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import shutil
from typing import Any, Mapping

import grain
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import NamedSharding, PartitionSpec as P

CHECKPOINTS_SUBDIR = "checkpoints"
STATE, DATA_ITER, META, CHECKSUMS = "state", "data_iter", "meta", "checksums"
CHECKSUM_FORMAT = "uint32-sum+position-weighted-sum/v1"
DAMAGED_SUFFIX = ".damaged"
PyTree = Any


class CheckpointCorruptError(ValueError):
  """A checkpoint step fails its checksums or cannot be read; names the step and what."""

  def __init__(self, step_dir: object, step: int, what: str):
    self.step_dir, self.step, self.what = str(step_dir), int(step), what
    super().__init__(f"{self.step_dir}: checkpoint step {step} is damaged: {what}")


# --- Checksums (device or host, same integers). -----------------------------------------------

def _sums(xp, x) -> tuple[Any, Any]:
  """(sum, position-weighted sum) mod 2**32 of the array's bits as uint32 words."""
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype == bool:
    x = x.astype(np.uint8)
  size = np.dtype(x.dtype).itemsize
  if xp is np:
    w = np.ascontiguousarray(x).reshape(-1).view({1: np.uint8, 2: np.uint16, 4: np.uint32,
                                                  8: np.uint32}[size]).astype(np.uint32)
  else:
    kind = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[size]
    w = jax.lax.bitcast_convert_type(x, kind).reshape(-1).astype(jnp.uint32)
  i = xp.arange(1, w.shape[0] + 1, dtype=np.uint32)
  return xp.sum(w, dtype=np.uint32), xp.sum(w * i, dtype=np.uint32)


@functools.partial(jax.jit)
def _device_sums(tree: PyTree) -> PyTree:
  return jax.tree.map(lambda x: jnp.stack(_sums(jnp, x)), tree)


def _is_array(x) -> bool:
  return hasattr(x, "shape") and hasattr(x, "dtype")


def checksums(tree: PyTree) -> dict[str, list[int]]:
  """{leaf path: [sum, weighted sum]} of every array leaf (jax arrays on their devices, numpy
  on the host; both give the same integers)."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  keys = [jax.tree_util.keystr(k) for k, v in leaves if _is_array(v)]
  arrays = [v for _, v in leaves if _is_array(v)]
  if all(isinstance(a, np.ndarray | np.generic) for a in arrays):
    sums = [np.stack(_sums(np, np.asarray(a))) for a in arrays]
  else:
    sums = jax.device_get(_device_sums([jnp.asarray(a) if isinstance(a, np.ndarray | np.generic)
                                        else a for a in arrays]))
  return {k: [int(v) for v in np.asarray(s)] for k, s in zip(keys, sums)}


def _read_checksums(step_dir: epath.Path) -> dict[str, Any] | None:
  path = epath.Path(step_dir) / CHECKSUMS
  if not path.is_dir():
    return None
  return ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(str(path))


def verify(tree: PyTree, step_dir: str | os.PathLike, step: int) -> bool:
  """Checks the arrays of a restored tree (or part of it) against the step's checksums.

  Returns False for a step written without checksums; raises CheckpointCorruptError naming the
  first array that differs (or is missing from the record)."""
  try:
    record = _read_checksums(epath.Path(step_dir))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorruptError(step_dir, step, f"unreadable {CHECKSUMS} item: {e}") from e
  if record is None:
    logging.warning("%s: written without checksums; restored unverified", step_dir)
    return False
  saved = record.get("arrays", {})
  for key, sums in checksums(tree).items():
    want = saved.get(f"[{STATE!r}]{key}")
    if want is None:
      raise CheckpointCorruptError(step_dir, step, f"array {STATE}{key} has no checksum")
    if list(want) != sums:
      raise CheckpointCorruptError(step_dir, step, f"array {STATE}{key} in {step_dir}/{STATE} "
                                   f"fails its checksum (saved {want}, read {sums})")
  return True


def _checksum_item(state: PyTree) -> dict[str, Any]:
  return {"format": CHECKSUM_FORMAT, "arrays": checksums({STATE: state})}


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
           CHECKSUMS: ocp.args.JsonSave(_checksum_item(tree))}
  if data_iter is not None:
    items[DATA_ITER] = grain.checkpoint.CheckpointSave(data_iter)
  return mngr.save(step, args=ocp.args.Composite(**items), force=True)


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
    raise CheckpointCorruptError(step_dir, step, f"unreadable orbax state item "
                                 f"{step_dir / STATE}: {e}") from e
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
  try:
    with ocp.CheckpointManager(root) as mngr:
      restored = mngr.restore(step, args=ocp.args.Composite(**items))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorruptError(step_dir, step, f"orbax cannot read it "
                                 f"({type(e).__name__}: {str(e)[:300]})") from e
  verify(restored[STATE], step_dir, step)
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
    mngr.save(step, args=ocp.args.Composite(**{
        STATE: ocp.args.StandardSave(state), META: ocp.args.JsonSave(dict(meta)),
        CHECKSUMS: ocp.args.JsonSave(_checksum_item(state))}), force=True)
    mngr.wait_until_finished()
  return step_dir
