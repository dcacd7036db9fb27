"""Dense (per-pixel) datasets as whole images: OSCD change detection, Sen1Floods11 and
SegMunich segmentation, behind one interface.

`data.source` picks the reader; `data.paths` is the dataset root in its published layout:

  oscd              data_pipelines.oscd: cities with cube, cube2 (second date) and a change
                    mask {0, 1}; `data.cities` ("a,b,c") or `data.dataset_split`
                    ("train" / "test": the root's official lists) choose the cities
  sen1floods11_seg  data_pipelines.sen1floods11.chip_records: whole chips, mask -1 / 0 / 1
  segmunich         data_pipelines.segmunich: `data.dataset_split` "train" / "test", mask 0..12

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

from data_pipelines import normalization
from data_pipelines import schema
from data_pipelines import splits

DENSE_SOURCES = ("oscd", "sen1floods11_seg", "segmunich")
MINMAX_SCOPES = ("image", "patch")


def class_names(source: str) -> tuple[str, ...]:
  """The mask classes of a dense source (index = mask value)."""
  if source == "oscd":
    from data_pipelines import oscd  # pylint: disable=g-import-not-at-top
    return oscd.CLASS_NAMES
  if source == "sen1floods11_seg":
    from data_pipelines import sen1floods11  # pylint: disable=g-import-not-at-top
    return sen1floods11.CLASS_NAMES
  if source == "segmunich":
    from data_pipelines import segmunich  # pylint: disable=g-import-not-at-top
    return segmunich.CLASS_NAMES
  raise ValueError(f"data.source {source!r} is not a dense source {DENSE_SOURCES}")


def oscd_city_list(cfg) -> list[str]:
  """The OSCD cities a config names: data.cities, else the official list of
  data.dataset_split, else every city under data.paths."""
  from data_pipelines import oscd  # pylint: disable=g-import-not-at-top
  if cfg.get("cities"):
    return [c.strip() for c in str(cfg.cities).split(",") if c.strip()]
  if cfg.get("dataset_split"):
    return oscd.official_cities(cfg.paths, cfg.dataset_split)
  return oscd.city_names(cfg.paths)


def _read(cfg, bands: tuple[str, ...]) -> list[dict[str, Any]]:
  if cfg.source == "oscd":
    from data_pipelines import oscd  # pylint: disable=g-import-not-at-top
    if cfg.get("verify_sha256"):
      from data_pipelines.checksums import verify_sha256sums  # pylint: disable=g-import-not-at-top
      verify_sha256sums(cfg.paths)
    return [oscd.load_city(cfg.paths, city, bands=bands, resampling=cfg.band_resampling,
                           label_convention=cfg.label_convention)
            for city in oscd_city_list(cfg)]
  if cfg.source == "sen1floods11_seg":
    from data_pipelines import sen1floods11  # pylint: disable=g-import-not-at-top
    return sen1floods11.chip_records(cfg.paths, verify_sha256=bool(cfg.get("verify_sha256")))
  if cfg.source == "segmunich":
    from data_pipelines import segmunich  # pylint: disable=g-import-not-at-top
    return segmunich.split_records(cfg.paths, cfg.dataset_split or "train",
                                   channels=cfg.segmunich_channels)
  raise ValueError(f"data.source {cfg.source!r} is not a dense source {DENSE_SOURCES}")


def dense_records(cfg) -> list[dict[str, Any]]:
  """The images of a dense config as read: cube (and cube2) [C, H, W] in `data.bands` order,
  mask int32 [H, W], key, and provenance (date, date2, crs, bounds, source when known)."""
  if cfg.minmax_scope not in MINMAX_SCOPES:
    raise ValueError(f"data.minmax_scope {cfg.minmax_scope!r} not in {MINMAX_SCOPES}")
  bands = schema.parse_band_list(cfg.bands)
  records = _read(cfg, bands)
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
  from data_pipelines import oscd  # pylint: disable=g-import-not-at-top
  return oscd.change_fraction([r["mask"] for r in dense_records(cfg)])


def crops_per_image(rec: dict[str, Any], size: int, configured: int) -> int:
  """Training crops drawn from an image per epoch: `configured`, or when 0 as many as
  non-overlapping size x size tiles cover it (ceil(H / size) x ceil(W / size))."""
  if configured > 0:
    return int(configured)
  h, w = rec["mask"].shape
  return -(-h // size) * -(-w // size)
