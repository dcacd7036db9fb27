"""Where a run keeps its checkpoints, and the items of one step (see the package docstring)."""

from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp
from etils import epath


CHECKPOINTS_SUBDIR = "checkpoints"
STATE, DATA_ITER, META, CHECKSUMS = "state", "data_iter", "meta", "checksums"
CHECKSUM_FORMAT = "uint32-sum+position-weighted-sum/v1"
DAMAGED_SUFFIX = ".damaged"
PyTree = Any



def absolute(path: str | os.PathLike) -> str:
  """Absolute local path (orbax rejects relative ones); URLs (gs://...) are kept as they are."""
  path = str(path)
  return path if "://" in path else os.path.abspath(path)


def checkpoint_dir(workdir: str | os.PathLike) -> str:
  """`<workdir>/checkpoints`, absolute."""
  return str(epath.Path(absolute(workdir)) / CHECKPOINTS_SUBDIR)


def state_metadata(path: str | os.PathLike) -> PyTree:
  """Tree of ArrayMetadata (shape, dtype) of a saved `state` item."""
  meta = ocp.PyTreeCheckpointer().metadata(path)
  return meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta.tree
