"""Tiny segmenters and change detectors for the dense weights tests: random params (every
leaf, so the whole mapping is exercised) saved as a run's checkpoint with the meta training
writes (model record, bands, normalization, data config)."""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

import export_helpers as H
from spectralgpt_jax import checkpoints
from spectralgpt_jax.models import get_model

TINY_CD = "cd_vit_tiny_patch8_32"
TINY_SEG = "seg_vit_tiny_patch8_32"
# The tiny heads of configs/eval/dense_common.py.
TINY_HEAD = dict(pyramid_channels=(32, 32, 64, 64), head_channels=32, pyramid_groups=8,
                 head_groups=8)
SOURCES = {TINY_CD: "oscd", TINY_SEG: "sen1floods11_seg"}


def write_dense_run(workdir: pathlib.Path, name: str, *, seed: int = 0, std: float = 0.2,
                    img_size: int = 32, tiles: tuple[int, int] | None = None,
                    bands: list[str] | None = None,
                    **model_kwargs) -> tuple[pathlib.Path, dict, object]:
  """A dense run at `workdir/run` (step 5): (run dir, numpy params, model). `tiles` writes
  the evaluation's metrics.json (tile size, stride) beside the run, as dense_eval does;
  `bands`: the input planes' names (default the 12 SpectralGPT bands)."""
  kwargs = {**TINY_HEAD, "img_size": img_size, **model_kwargs}
  model = get_model(name, **kwargs)
  params = jax.tree.map(np.asarray, H.random_params(model, seed=seed, std=std))
  record = {"name": name, **{k: list(v) if isinstance(v, tuple) else v
                             for k, v in kwargs.items()}}
  meta = {"model": record, "bands": list(bands or H.BANDS), "normalization": dict(H.NORMALIZATION),
          "config": {"data": {"source": SOURCES[name], "image_size": img_size,
                              "minmax_scope": "image"}}}
  run = pathlib.Path(workdir) / "run"
  checkpoints.write_checkpoint(run / checkpoints.CHECKPOINTS_SUBDIR, params, meta, step=5)
  if tiles:
    (pathlib.Path(workdir) / "metrics.json").write_text(json.dumps(
        {"metrics": {}, "info": {"tile_size": tiles[0], "tile_stride": tiles[1]}}))
  return run, params, model
