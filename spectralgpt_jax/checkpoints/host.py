"""Host-side reads and writes of params and meta, without a mesh (export, import, inference)."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from typing import Any, Mapping

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from spectralgpt_jax.checkpoints.integrity import (CheckpointCorruptError, checksum_item,
                                                   step_custom_metadata, verify)
from spectralgpt_jax.checkpoints.layout import (CHECKPOINTS_SUBDIR, CHECKSUMS, META, STATE,
                                                check_location, state_metadata)


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


# In an object store a step is written in place (no rename); orbax writes this file last.
_COMMIT_MARKER = "commit_success.txt"


def _as_path(path: str | os.PathLike) -> pathlib.Path:
  """A local path made absolute, or an epath.Path for a gs:// URL (others: ValueError)."""
  text = check_location(path)
  if "://" in text:
    return epath.Path(text)  # the same interface as pathlib for what is used here
  return pathlib.Path(text).expanduser().resolve()


def _is_step_dir(path: pathlib.Path) -> bool:
  if not (path.name.isdigit() and (path / STATE).is_dir()):
    return False
  return "://" not in os.fspath(path) or (path / _COMMIT_MARKER).exists()


def resolve(path: str | os.PathLike, step: int | None = None) -> tuple[pathlib.Path, int]:
  """(CheckpointManager root, step) for a workdir, a manager root or one step directory.

  Without `step`, the latest step is used (in a bucket: the latest committed one). Raises
  FileNotFoundError naming what is missing.
  """
  path = _as_path(path)
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
    tree = state_metadata(step_dir / STATE)
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
  root = _as_path(root)
  step_dir = root / str(step)
  if step_dir.exists():
    if not force:
      raise FileExistsError(f"{step_dir} exists; pass --overwrite (force=True) to replace it")
    if isinstance(step_dir, pathlib.Path):
      shutil.rmtree(step_dir)
    else:
      step_dir.rmtree()
  state = {"params": params, "step": np.asarray(step, np.int64), **(extra_state or {})}
  options = ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False)
  with ocp.CheckpointManager(root, options=options) as mngr:
    mngr.save(step, args=ocp.args.Composite(**{
        STATE: ocp.args.StandardSave(state), META: ocp.args.JsonSave(dict(meta)),
        CHECKSUMS: ocp.args.JsonSave(checksum_item(state))}), force=True,
        custom_metadata=step_custom_metadata())
    mngr.wait_until_finished()
  return step_dir
