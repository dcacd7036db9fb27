"""Collectives of the evaluators over JAX processes, numpy in and out. Every process must call
each of them, in the same order (they wait for each other); with one process they return
their input.

  sum_across_processes(x)   elementwise sum of every process's x (exact for int64 / float64)
  gather_rows(x)            every process's rows, concatenated in process order
  gather_strings(s)         the same for a [N] str array
  global_batches(batches)   each process's batches as batches of every process's rows, for
                            model calls that are collective (every process passes the same
                            batch)
"""

from __future__ import annotations

from typing import Iterator, Mapping

import jax
import numpy as np


def _allgather(x: np.ndarray) -> np.ndarray:
  """[P, *x.shape]: x of every process. Carried as bytes: jax without x64 would carry int64
  as int32 and float64 as float32."""
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  x = np.ascontiguousarray(x)
  raw = x.reshape(-1).view(np.uint8)
  every = np.asarray(multihost_utils.process_allgather(raw), np.uint8)
  return every.reshape(jax.process_count(), -1).view(x.dtype).reshape(-1, *x.shape)


def sum_across_processes(x: np.ndarray) -> np.ndarray:
  """`x` (same shape and dtype on every process) summed elementwise over the processes."""
  x = np.asarray(x)
  if jax.process_count() == 1:
    return x
  return _allgather(x).sum(0).astype(x.dtype)


def gather_rows(x: np.ndarray) -> np.ndarray:
  """Rows of every process, concatenated in process order (unequal row counts allowed, the
  other dimensions and the dtype the same)."""
  x = np.asarray(x)
  if jax.process_count() == 1:
    return x
  counts = _allgather(np.asarray([x.shape[0]], np.int64)).reshape(-1)
  pad = np.zeros((int(counts.max()) - x.shape[0], *x.shape[1:]), x.dtype)
  every = _allgather(np.concatenate([x, pad]))
  return np.concatenate([every[p, :c] for p, c in enumerate(counts)])


def gather_strings(s: np.ndarray) -> np.ndarray:
  """[N] str of every process, concatenated in process order (as fixed-width UTF-8 bytes)."""
  if jax.process_count() == 1:
    return np.asarray(s)
  raw = [v if isinstance(v, bytes) else str(v).encode() for v in np.asarray(s).reshape(-1)]
  width = int(_allgather(np.asarray([max([1] + [len(r) for r in raw])], np.int64)).max())
  rows = np.frombuffer(b"".join(r.ljust(width, b"\0") for r in raw), np.uint8)
  every = gather_rows(rows.reshape(len(raw), width))
  return np.array([bytes(r).rstrip(b"\0").decode() for r in every], dtype=str)


def global_batches(batches: Iterator[Mapping[str, np.ndarray]],
                   what: str = "the split") -> Iterator[dict[str, np.ndarray]]:
  """Batch i of every process (rows in process order), for i = 0, 1, ... while any process
  has one; a process out of batches adds no rows. Values are arrays of rows; `key` (str) too.
  ValueError on every process when one of them reads no batch at all."""
  if jax.process_count() == 1:
    yield from (dict(b) for b in batches)
    return
  empty = None
  while True:
    batch = next(batches, None)
    has = _allgather(np.asarray([batch is not None], np.int64)).reshape(-1)
    if not has.any():
      return
    if empty is None and not has.all():
      raise ValueError(f"{what}: processes {np.flatnonzero(has == 0).tolist()} of {len(has)} "
                       "read no batch; write more shards or run fewer processes")
    if batch is None:
      batch = empty
    empty = {k: np.asarray(v)[:0] for k, v in batch.items()}
    yield {k: gather_strings(v) if np.asarray(v).dtype.kind in "USO" else gather_rows(v)
           for k, v in sorted(batch.items())}
