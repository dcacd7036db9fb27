"""Initialise from another run's params only (stage 2, fine-tuning): no optimizer state, no step.

Every parameter whose path and shape match is copied. Position tables whose grid changed
(stage 1 at 96 px -> stage 2 at 128 px: 12x12 -> 16x16 spatial positions) are either kept at
their fresh initialisation ("reinit", what the official `--resume_different_size` does) or
resized from the source ("resize": bicubic for the spatial table, linear for spectral/date
tables). Any other shape mismatch is an error naming the parameter.
"""

from __future__ import annotations

from typing import Any

import jax
from absl import logging
from flax.traverse_util import flatten_dict, unflatten_dict
from jax.sharding import NamedSharding, PartitionSpec as P

from spectralgpt_jax.models import posembed
from spectralgpt_jax.models.transformer import is_scanned, to_scanned, to_unrolled
from spectralgpt_jax import checkpoints

PyTree = Any
POS_MODES = ("reinit", "resize")


def _resize(name: str, src, shape) -> jax.Array | None:
  if name.endswith("pos_embed_spatial"):
    side = int(round(shape[1] ** 0.5))
    if side * side == shape[1]:
      return posembed.resize_spatial(src, side)
  elif name.endswith(("pos_embed_temporal", "pos_embed_date")) and src.shape[2] == shape[2]:
    return posembed.resize_groups(src, shape[1])
  return None


def merge(fresh: PyTree, source: PyTree, pos_embed: str = "reinit") -> tuple[dict, list[str]]:
  """Target-layout params: `source` where it fits, `fresh` elsewhere. Returns (params, report)."""
  if pos_embed not in POS_MODES:
    raise ValueError(f"config.init_from.pos_embed must be one of {POS_MODES}, got {pos_embed!r}")
  source = to_scanned(dict(source)) if is_scanned(fresh) else to_unrolled(dict(source))
  src, dst = flatten_dict(source), flatten_dict(fresh)
  out, report = {}, []
  for path, leaf in sorted(dst.items()):  # jax tree order: keys sorted at every level
    name = "/".join(path)
    if path not in src:
      out[path] = leaf
      report.append(f"{name}: not in source, fresh init")
      continue
    value = src[path]
    if tuple(value.shape) == tuple(leaf.shape):
      out[path] = value
      continue
    if "pos_embed" not in path[-1]:
      raise ValueError(f"config.init_from: parameter {name} has shape {tuple(value.shape)} in "
                       f"the source run but {tuple(leaf.shape)} in this model")
    resized = _resize(path[-1], value, leaf.shape) if pos_embed == "resize" else None
    if resized is None:
      out[path] = leaf
      report.append(f"{name}: {tuple(value.shape)} -> {tuple(leaf.shape)}, fresh init")
    else:
      out[path] = resized.astype(leaf.dtype)
      report.append(f"{name}: {tuple(value.shape)} -> {tuple(leaf.shape)}, resized")
  unused = sorted("/".join(p) for p in src if p not in dst)
  if unused:
    report.append(f"unused source parameters: {', '.join(unused[:8])}"
                  + (" ..." if len(unused) > 8 else ""))
  return unflatten_dict(out), report


def load_into(fresh: PyTree, shardings: PyTree, init_cfg, mesh: jax.sharding.Mesh) -> PyTree:
  """Params of run `init_cfg.workdir` (step `init_cfg.step`, -1 = latest) merged into `fresh`
  (already sharded) and placed on `shardings`."""
  saved = checkpoints.params_metadata(init_cfg.workdir, init_cfg.step)
  # Matching leaves restore straight onto their target sharding; others arrive replicated.
  fresh_flat, sh_flat = flatten_dict(fresh), flatten_dict(shardings)
  rep = NamedSharding(mesh, P())
  saved_sh = unflatten_dict({
      p: (sh_flat[p] if p in fresh_flat and tuple(m.shape) == tuple(fresh_flat[p].shape)
          else rep) for p, m in flatten_dict(saved).items()})
  source = checkpoints.load_params(init_cfg.workdir, init_cfg.step, saved_sh)
  params, report = merge(fresh, source, init_cfg.pos_embed)
  for line in report:
    logging.info("init_from %s: %s", init_cfg.workdir, line)
  return jax.tree.map(lambda x, s: jax.device_put(x, s), params, shardings)


__all__ = ["merge", "load_into", "POS_MODES"]
