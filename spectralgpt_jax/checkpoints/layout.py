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



def check_location(path: str | os.PathLike) -> str:
  """`path` as a string; ValueError (one line naming it and the fix) for a URL orbax cannot
  hold checkpoints at. orbax writes and reads local paths and gs:// only: it turns s3://b/run
  into a relative local folder "s3:/b/run" (or refuses it with OCDBT)."""
  text = os.fspath(path)
  if "://" in text and not text.startswith("gs://"):
    raise ValueError(f"{text}: orbax writes checkpoints to local paths and gs:// only (orbax "
                     f"{ocp.__version__} would write a local folder "
                     f"{text.replace('://', ':/', 1)!r}); use a gs:// workdir, a local path, "
                     "or the bucket mounted as a local path")
  return text


def absolute(path: str | os.PathLike) -> str:
  """Absolute local path (orbax rejects relative ones); gs:// URLs are kept as they are, other
  URLs raise ValueError (`check_location`)."""
  path = check_location(path)
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
