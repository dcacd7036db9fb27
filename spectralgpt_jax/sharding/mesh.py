"""The device mesh: three named axes (data, fsdp, tensor) from config, -1 filling the rest."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from spectralgpt_jax.sharding.rules import BATCH_AXES, MESH_AXES


def resolve_shape(mesh_cfg: Mapping[str, Any], num_devices: int) -> tuple[int, int, int]:
  """{data, fsdp, tensor} sizes (one may be -1) -> concrete sizes whose product is num_devices."""
  sizes = [int(mesh_cfg[a]) for a in MESH_AXES]
  fill = [i for i, s in enumerate(sizes) if s == -1]
  if len(fill) > 1:
    raise ValueError(f"config.mesh: at most one axis may be -1, got {dict(zip(MESH_AXES, sizes))}")
  if any(s == 0 or s < -1 for s in sizes):
    raise ValueError(f"config.mesh: sizes must be positive or -1, got "
                     f"{dict(zip(MESH_AXES, sizes))}")
  known = math.prod(s for s in sizes if s != -1)
  if fill:
    if num_devices % known:
      raise ValueError(f"config.mesh: {num_devices} devices are not divisible by the fixed axes "
                       f"{dict(zip(MESH_AXES, sizes))}")
    sizes[fill[0]] = num_devices // known
  if math.prod(sizes) != num_devices:
    raise ValueError(f"config.mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} "
                     f"devices but {num_devices} are available")
  return tuple(sizes)


def make_mesh(mesh_cfg: Mapping[str, Any], devices: Sequence[jax.Device] | None = None) -> Mesh:
  """Mesh with Auto axis types (classic GSPMD; jax.make_mesh defaults to Explicit since 0.7).

  `devices` defaults to all global devices; jax.make_mesh orders them for the physical
  topology (TPU torus, GPU NVLink islands).
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = resolve_shape(mesh_cfg, len(devices))
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES),
                       devices=devices)


def batch_sharding(mesh: Mesh, ndim: int = 1) -> NamedSharding:
  """Leading (batch) axis split over data x fsdp; the rest replicated (also across tensor)."""
  return NamedSharding(mesh, P(BATCH_AXES, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_divisor(mesh: Mesh) -> int:
  """How many ways the global batch is split (data x fsdp)."""
  return mesh.shape[BATCH_AXES[0]] * mesh.shape[BATCH_AXES[1]]
