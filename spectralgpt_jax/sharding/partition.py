"""Shardings of the train state: parameters from their logical names, optimizer state by path.

Flow (lm1b / maxtext): `jax.eval_shape(model.init)` gives boxed abstract params carrying logical
axis names; `param_shardings` resolves them through a rule preset on the mesh; optimizer state
leaves inherit the sharding of the parameter they mirror (Adam mu/nu), everything else (step
counters, scalars) is replicated. Nothing here allocates device memory.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from spectralgpt_jax.sharding.rules import Rules

PyTree = Any


def _axis_size(mesh: Mesh, axes: str | tuple[str, ...] | None) -> int:
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else axes
  return math.prod(mesh.shape[a] for a in axes)


def fit_spec(spec: P, shape: tuple[int, ...], mesh: Mesh, where: str = "") -> P:
  """Drops mesh axes from dimensions they do not divide (they stay replicated), with a log line.

  XLA requires even shards for jit outputs; e.g. a 4-wide spectral table cannot split 8 ways.
  """
  spec = tuple(spec) + (None,) * (len(shape) - len(spec))
  out = []
  for dim, axes in zip(shape, spec):
    size = _axis_size(mesh, axes)
    if size > 1 and dim % size:
      logging.info("sharding: %s dim %d not divisible by %s (%d); replicated", where, dim, axes,
                   size)
      axes = None
    out.append(axes)
  return P(*out)


def logical_to_spec(names: tuple[str | None, ...], shape: tuple[int, ...], mesh: Mesh,
                    rules: Rules, where: str = "") -> P:
  """Logical axis names of one array -> the PartitionSpec the preset gives it on `mesh`."""
  return fit_spec(resolve(names, rules, mesh), shape, mesh, where)


def resolve(names: tuple[str | None, ...], rules: Rules, mesh: Mesh | None = None) -> P:
  """Per dimension, the first rule for its name whose mesh axes are still unused in this array.

  Unlike flax's resolver this accepts a logical name twice in one array: the second occurrence
  finds its mesh axis taken and stays replicated. Mesh axes of size 1 are dropped so specs read
  the same on any mesh.
  """
  used: set[str] = set()
  out = []
  for name in names:
    choice = None
    for logical, axes in rules:
      if logical != name:
        continue
      tup = () if axes is None else ((axes,) if isinstance(axes, str) else tuple(axes))
      if mesh is not None:
        tup = tuple(a for a in tup if mesh.shape[a] > 1)
      if used.intersection(tup):
        continue
      used.update(tup)
      choice = (tup[0] if len(tup) == 1 else tup) if tup else None
      break
    out.append(choice)
  return P(*out)


def param_specs(abstract_boxed: PyTree, mesh: Mesh, rules: Rules) -> PyTree:
  """Boxed abstract params (from eval_shape of init) -> tree of PartitionSpec (unboxed layout)."""

  def one(path, leaf):
    where = jax.tree_util.keystr(path)
    if isinstance(leaf, nn.LogicallyPartitioned):
      return logical_to_spec(tuple(leaf.names), leaf.value.shape, mesh, rules, where)
    if leaf.ndim:
      logging.warning("sharding: parameter %s has no logical axis names; replicated", where)
    return P()

  return jax.tree_util.tree_map_with_path(
      one, abstract_boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def to_shardings(specs: PyTree, mesh: Mesh) -> PyTree:
  return jax.tree.map(lambda s: NamedSharding(mesh, s), specs,
                      is_leaf=lambda x: isinstance(x, P))


def _path_key(path) -> tuple[str, ...]:
  return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def mirror_specs(abstract_tree: PyTree, abstract_params: PyTree, specs: PyTree) -> PyTree:
  """PartitionSpecs for an optimizer state: a leaf whose path ends with a parameter's path and
  has its shape gets that parameter's spec (Adam mu and nu); other leaves are replicated."""
  by_path = {}
  for (path, leaf), spec in zip(jax.tree_util.tree_flatten_with_path(abstract_params)[0],
                                jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, P))):
    by_path[_path_key(path)] = (tuple(leaf.shape), spec)

  def one(path, leaf):
    key = _path_key(path)
    for i in range(len(key)):
      hit = by_path.get(key[i:])
      if hit is not None and hit[0] == tuple(leaf.shape):
        return hit[1]
    return P()

  return jax.tree_util.tree_map_with_path(one, abstract_tree)

