"""Where a run keeps its checkpoints, and the items of one step (see the package docstring)."""

from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp
from etils import epath


CHECKPOINTS_SUBDIR = "checkpoints"
STATE, DATA_ITER, META, CHECKSUMS = "state", "data_iter", "meta", "checksums"
CHECKSUM_FORMAT = "uint32-sum+position-weighted-sum/v1"
# orbax's per-step metadata file; its custom_metadata carries {CHECKSUM_FORMAT_KEY: format}
STEP_METADATA_FILE = "_CHECKPOINT_METADATA"
CHECKSUM_FORMAT_KEY = "checksum_format"
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
  """Tree of ArrayMetadata (shape, dtype) of a saved `state` item.

  Read by the item's handler: a Checkpointer would look for a step-level metadata file inside
  the item directory and log "Metadata file does not exist" on every read."""
  meta = ocp.PyTreeCheckpointHandler().metadata(epath.Path(path))
  return meta.item_metadata.tree if hasattr(meta, "item_metadata") else meta.tree
