"""Host-local numpy batches -> global `jax.Array`s sharded over the mesh's data axes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def data_sharding(mesh: Mesh, data_axes: str | Sequence[str] = ("data",)) -> NamedSharding:
  """NamedSharding that splits the leading (batch) dimension over `data_axes`."""
  axes = (data_axes,) if isinstance(data_axes, str) else tuple(data_axes)
  missing = [a for a in axes if a not in mesh.axis_names]
  if missing:
    raise ValueError(f"data axes {missing} not in mesh axes {mesh.axis_names}")
  return NamedSharding(mesh, P(axes if len(axes) > 1 else axes[0]))


def _leaf_sharding(sharding: NamedSharding, ndim: int) -> NamedSharding:
  batch_spec = sharding.spec[0] if len(sharding.spec) else None
  return NamedSharding(sharding.mesh, P(batch_spec, *([None] * (ndim - 1))))


def make_global_batch(batch: dict[str, Any], sharding: NamedSharding) -> dict[str, jax.Array]:
  """Each host passes its own [b, ...] arrays; returns [b * hosts, ...] global arrays.

  Only the first entry of `sharding.spec` (the batch dimension) is used; every other
  dimension is replicated, so one sharding serves cube, label and mask alike. Non-numeric
  leaves (e.g. string keys) are dropped.
  """
  out = {}
  for name, x in batch.items():
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
      continue
    sh = _leaf_sharding(sharding, x.ndim)
    try:
      out[name] = jax.make_array_from_process_local_data(sh, x)
    except ValueError as e:
      raise ValueError(f"batch field {name!r} with host shape {x.shape} cannot be laid out as "
                       f"{sh.spec} on mesh {dict(sharding.mesh.shape)}: the per-host batch "
                       "must be divisible by the local devices along the data axes") from e
  return out


def global_batches(iterator: Iterable[dict[str, Any]], sharding: NamedSharding,
                   ) -> Iterator[dict[str, jax.Array]]:
  """Maps `make_global_batch` over an iterator (the iterator itself keeps its state)."""
  for batch in iterator:
    yield make_global_batch(batch, sharding)
