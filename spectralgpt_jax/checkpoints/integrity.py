"""Per-array checksums committed with each step and verified on every restore and read.

A step without its `checksums` item is refused (CheckpointCorruptError) unless it predates
checksums. That is known from orbax's own step metadata file, `<step>/_CHECKPOINT_METADATA`,
which a lost `checksums` folder does not take with it: every step written since checksums
exist records `checksum_format` in its custom_metadata (and, since the first such version,
lists a `checksums` item handler). A step whose metadata has neither is an older run's:
restored unverified with a warning. A step whose metadata is missing cannot tell and is
refused too. To read a refused step anyway, pass `allow_unverified=True` to `verify`, or run
the read inside `with allow_unverified():` (the CLI's `--allow_unverified`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
import orbax.checkpoint as ocp
from etils import epath

from spectralgpt_jax.checkpoints.layout import (CHECKSUM_FORMAT, CHECKSUM_FORMAT_KEY, CHECKSUMS,
                                                STATE, STEP_METADATA_FILE, PyTree)

# Whether reads in this context may restore a step whose checksum record is missing.
_ALLOW_UNVERIFIED = contextvars.ContextVar("allow_unverified", default=False)


@contextlib.contextmanager
def allow_unverified(allow: bool = True) -> Iterator[None]:
  """Within the block, a step that lost its checksum record is restored with a warning
  instead of refused (a damaged record, or arrays that fail it, are still refused)."""
  token = _ALLOW_UNVERIFIED.set(bool(allow))
  try:
    yield
  finally:
    _ALLOW_UNVERIFIED.reset(token)


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


def written_with_checksums(step_dir: str | os.PathLike) -> bool | None:
  """Whether the step was written by a version that records checksums (from orbax's step
  metadata file; see the module docstring); None when that file is missing or unreadable."""
  try:
    meta = json.loads((epath.Path(step_dir) / STEP_METADATA_FILE).read_text())
  except (OSError, ValueError):
    return None
  if not isinstance(meta, dict):
    return None
  custom = meta.get("custom_metadata") or {}
  return CHECKSUM_FORMAT_KEY in custom or CHECKSUMS in (meta.get("item_handlers") or {})


def _missing_record(step_dir, step: int, allow: bool) -> None:
  """A step without its checksums item: a warning if it predates checksums or `allow`, else
  CheckpointCorruptError."""
  since = written_with_checksums(step_dir)
  if since is False:
    logging.warning("%s: written before checksums existed; restored unverified", step_dir)
    return
  why = (f"its {CHECKSUMS} record is missing, but the step was written with checksums"
         if since else f"its {CHECKSUMS} record and {STEP_METADATA_FILE} are missing")
  if not allow:
    raise CheckpointCorruptError(step_dir, step, why + "; pass --allow_unverified "
                                 "(checkpoints.allow_unverified()) to read it unverified")
  logging.warning("%s: %s; restored unverified (allowed)", step_dir, why)


def verify(tree: PyTree, step_dir: str | os.PathLike, step: int, *,
           allow_unverified: bool | None = None) -> bool:
  """Checks the arrays of a restored tree (or part of it) against the step's checksums.

  Returns False for a step restored without checksums: one that predates them, or lost its
  record while `allow_unverified` (default: the `allow_unverified()` context) holds. Raises
  CheckpointCorruptError for a lost record otherwise, and naming the first array that differs
  (or is missing from the record)."""
  try:
    record = _read_checksums(epath.Path(step_dir))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorruptError(step_dir, step, f"unreadable {CHECKSUMS} item: {e}") from e
  if record is None:
    allow = _ALLOW_UNVERIFIED.get() if allow_unverified is None else allow_unverified
    _missing_record(step_dir, step, allow)
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


def checksum_item(state: PyTree) -> dict[str, Any]:
  return {"format": CHECKSUM_FORMAT, "arrays": checksums({STATE: state})}


def step_custom_metadata() -> dict[str, Any]:
  """orbax custom_metadata of every saved step: says it was written with checksums."""
  return {CHECKSUM_FORMAT_KEY: CHECKSUM_FORMAT}


