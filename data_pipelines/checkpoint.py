"""Save and restore the grain iterator state with orbax, beside the training state.

In the trainer, put the iterator into the same `ocp.args.Composite` as the state:

  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          **{DATA_ITER: save_args(it)}))
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), **{DATA_ITER: restore_args(it)}))

`restore_args` applies the saved state to `it` in place, so the next batch is exactly the one
that followed the checkpoint. With several hosts, grain writes one state file per process.
"""

from __future__ import annotations

import os

import grain
import orbax.checkpoint as ocp

DATA_ITER = "data_iter"


def save_args(iterator: grain.DatasetIterator) -> grain.checkpoint.CheckpointSave:
  return grain.checkpoint.CheckpointSave(iterator)


def restore_args(iterator: grain.DatasetIterator) -> grain.checkpoint.CheckpointRestore:
  return grain.checkpoint.CheckpointRestore(iterator)


def make_manager(directory: str | os.PathLike, max_to_keep: int | None = 3,
                 ) -> ocp.CheckpointManager:
  """A CheckpointManager for an absolute path (orbax rejects relative ones)."""
  return ocp.CheckpointManager(os.path.abspath(directory), options=ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False))


def save_iterator(manager: ocp.CheckpointManager, step: int,
                  iterator: grain.DatasetIterator) -> None:
  """Saves only the iterator state (for pipelines checkpointed on their own)."""
  manager.save(step, args=ocp.args.Composite(**{DATA_ITER: save_args(iterator)}))
  manager.wait_until_finished()


def restore_iterator(manager: ocp.CheckpointManager, step: int,
                     iterator: grain.DatasetIterator) -> grain.DatasetIterator:
  """Restores the iterator state saved at `step` into `iterator` (in place); returns it."""
  manager.restore(step, args=ocp.args.Composite(**{DATA_ITER: restore_args(iterator)}))
  return iterator
