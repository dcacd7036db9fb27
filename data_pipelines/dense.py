"""Dense (per-pixel) datasets as whole images: OSCD change detection, Sen1Floods11 and
SegMunich segmentation, behind one interface.

`data.source` names a source of kind "dense" in `data_pipelines.datasets`, whose `records`
reads it; `data.paths` is the dataset root in its published layout:

  oscd              data_pipelines.oscd: cities with cube, cube2 (second date) and a change
                    mask {0, 1}; `data.oscd.cities` ("a,b,c") or `data.oscd.dataset_split`
                    ("train" / "test": the root's official lists) choose the cities
  sen1floods11_seg  data_pipelines.sen1floods11.chip_records: whole chips, mask -1 / 0 / 1
  segmunich         data_pipelines.segmunich: `data.segmunich.dataset_split` "train" / "test",
                    mask 0..12

Masks are int32 with -1 = ignored pixel everywhere. `dense_records` returns the images as
read (DN, `data.bands` selected by name, `data.split_file` applied to the keys);
`load_dense_images` returns them normalised for evaluation with what a GeoTIFF writer needs;
the training crops are built in `pipeline.py` (`RandomDenseCrop`).

Normalisation scope (`data.minmax_scope`, matters for "minmax" only; the other modes act per
pixel): "image" (default) normalises each whole image, so training crops and evaluation tiles
of an image see the same values; "patch" normalises every crop and tile on its own, as the
official OSCD code does (with `data.minmax_eps = 0` exactly: the official divides by
max - min without eps, which is NaN where a band is constant inside a patch). With "patch",
`load_dense_images` returns DN and `tile_normalizer` is applied to each tile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from data_pipelines import config as data_config
from data_pipelines import datasets
from data_pipelines import normalization
from data_pipelines import oscd
from data_pipelines import schema
from data_pipelines import splits

MINMAX_SCOPES = ("image", "patch")


def dense_source(name: str) -> datasets.DataSource:
  """The dense source called `name` (ValueError for another kind or an unknown name)."""
  src = datasets.get(name)
  if src.kind != "dense":
    raise ValueError(f"data.source {name!r} is not a dense source "
                     f"{datasets.names(kind='dense')}")
  return src


def class_names(source: str) -> tuple[str, ...]:
  """The mask classes of a dense source (index = mask value)."""
  return dense_source(source).class_names


def dense_records(cfg) -> list[dict[str, Any]]:
  """The images of a dense config as read: cube (and cube2) [C, H, W] in `data.bands` order,
  mask int32 [H, W], key, and provenance (date, date2, crs, bounds, source when known)."""
  if cfg.minmax_scope not in MINMAX_SCOPES:
    raise ValueError(f"data.minmax_scope {cfg.minmax_scope!r} not in {MINMAX_SCOPES}")
  data_config.check_data_config(cfg)
  bands = schema.parse_band_list(cfg.bands)
  records = dense_source(cfg.source).records(cfg)
  if cfg.get("split_file"):
    keep = splits.InSplit(splits.read_split_file(cfg.split_file))
    records = [r for r in records if keep(r)]
  if not records:
    raise ValueError(f"data.source={cfg.source!r} at {cfg.paths!r}: no image selected")
  out = []
  for rec in records:
    rec = dict(rec)
    for k in ("cube", "cube2"):
      if k in rec:
        rec[k] = schema.select_bands(rec[k], rec["bands"], bands)
    rec["bands"] = list(bands)
    rec["mask"] = np.asarray(rec["mask"], np.int32)
    out.append(rec)
  return out


def _normalizer(cfg) -> Callable[[np.ndarray], np.ndarray]:
  """x [..., C, H, W] -> float32 normalised with `data.normalization` (statistics resolved
  once, by band name)."""
  norm = normalization.norm_record(cfg)
  mean = None if "mean" not in norm else np.asarray(norm["mean"], np.float32)
  std = None if "std" not in norm else np.asarray(norm["std"], np.float32)
  mode, eps, quantize = cfg.normalization, float(cfg.minmax_eps), bool(cfg.sentinel_clip_quantize)
  return lambda x: normalization.apply(x, mode, mean, std, eps, quantize)


def normalize_images(records: list[dict[str, Any]], cfg) -> list[dict[str, Any]]:
  """Records with cube / cube2 normalised whole (scope "image") or as float32 DN ("patch")."""
  norm = _normalizer(cfg) if cfg.minmax_scope == "image" else lambda x: x.astype(np.float32)
  out = []
  for rec in records:
    rec = dict(rec)
    for k in ("cube", "cube2"):
      if k in rec:
        rec[k] = norm(rec[k])
    out.append(rec)
  return out


def tile_normalizer(cfg) -> Callable[[np.ndarray], np.ndarray]:
  """What each evaluation tile [..., C, S, S] of `load_dense_images` still needs: nothing with
  minmax_scope "image", the configured normalisation per tile with "patch"."""
  if cfg.minmax_scope == "image":
    return lambda x: x
  norm = _normalizer(cfg)
  return lambda x: norm(np.asarray(x))


def _affine(bounds, height: int, width: int) -> tuple[float, ...]:
  """(a, b, c, d, e, f) of the north-up affine transform mapping pixels onto `bounds`."""
  left, bottom, right, top = bounds
  return ((right - left) / width, 0.0, left, 0.0, -(top - bottom) / height, top)


def load_dense_images(cfg) -> list[dict[str, Any]]:
  """Whole images for evaluation, in the dataset's order.

  Each: key (str), cube float32 [C, H, W], cube2 float32 [C, H, W] or None, mask int32
  [H, W] (-1 ignored), bands (C names), crs (str or None), bounds (left, bottom, right, top)
  or None, transform (the 6 rasterio affine coefficients a, b, c, d, e, f) or None, date,
  date2, source. Cubes are normalised unless `data.minmax_scope` is "patch" (see
  `tile_normalizer`).
  """
  out = []
  for rec in normalize_images(dense_records(cfg), cfg):
    h, w = rec["mask"].shape
    bounds = rec.get("bounds")
    out.append({"key": rec["key"], "cube": rec["cube"], "cube2": rec.get("cube2"),
                "mask": rec["mask"], "bands": rec["bands"], "crs": rec.get("crs") or None,
                "bounds": tuple(bounds) if bounds else None,
                "transform": _affine(bounds, h, w) if bounds else None,
                "date": rec.get("date"), "date2": rec.get("date2"),
                "source": rec.get("source")})
  return out


def change_fraction(cfg) -> float:
  """p: the share of class 1 (change, water) among the labelled pixels of the images a config
  selects, e.g. the OSCD training cities for the official class weights."""
  return oscd.change_fraction([r["mask"] for r in dense_records(cfg)])


def crops_per_image(rec: dict[str, Any], size: int, configured: int) -> int:
  """Training crops drawn from an image per epoch: `configured`, or when 0 as many as
  non-overlapping size x size tiles cover it (ceil(H / size) x ceil(W / size))."""
  if configured > 0:
    return int(configured)
  h, w = rec["mask"].shape
  return -(-h // size) * -(-w // size)
