"""Saved dense predictions and PNG panels, one set per image, named after the image key (e.g.
the OSCD city), written atomically by process 0 through the `EvalContext` writers:

  <folder>/<key>.tif          class map [H, W] at the input's size, one-band uint8 GeoTIFF
                              (uint16 above 255 classes), with the CRS and transform when given;
                              pixels outside `valid` hold the nodata value 255 (65535)
  <folder>/<key>.png          the same class map in colour (`class_colours`; invalid pixels grey)
  <folder>/<key>_scores.npz   scores [K, H, W] float32 and class_map [H, W]
  <panel folder>/<key>.png    titled panel, left to right: RGB of each date (B4, B3, B2, each
                              channel stretched between its 2nd and 98th percentile), truth,
                              prediction, errors (`error_colours`)

Keys become file names: characters other than letters, digits, ".", "_" and "-" turn into "_".
Colours: two classes are black (0) and white (1); more classes: class 0 black, the others
spread around the hue circle. Ignored pixels (label -1) are grey everywhere.
"""

from __future__ import annotations

import colorsys
import io
import os
import posixpath
import re
import warnings
from collections.abc import Sequence

import numpy as np

from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.dense_metrics import IGNORE
from spectralgpt_jax.train.panels import encode_png, rgb_indices

GREY = (128, 128, 128)
# Error colours: true negative, true positive (or any correct pixel), false positive (or any
# wrong pixel), false negative, ignored.
TN, TP, FP, FN = (0, 0, 0), (255, 255, 255), (230, 40, 40), (40, 120, 255)
# Panel layout in pixels: longer side of each picture, gaps, title band, dpi of the PNG.
PANEL_TILE, PANEL_GAP, PANEL_TITLE, PANEL_DPI = 256, 8, 24, 100


def file_stem(key: str) -> str:
  """`key` as a file name (unsafe characters -> "_")."""
  stem = re.sub(r"[^A-Za-z0-9._-]", "_", str(key)).lstrip(".")
  if not stem:
    raise ValueError(f"image key {key!r} gives an empty file name")
  return stem


def _stem(folder: str, key: str) -> str:
  """`<folder>/<file_stem(key)>` relative to the evaluator's workdir ("" = the workdir)."""
  if os.path.isabs(folder) or ".." in folder.split("/"):
    raise ValueError(f"output folder {folder!r} must stay inside the evaluator's workdir")
  return posixpath.join(folder, file_stem(key)) if folder else file_stem(key)


def class_colours(num_classes: int) -> np.ndarray:
  """[K, 3] uint8 colour of each class (module docstring)."""
  if num_classes <= 2:
    return np.array([TN, TP][:num_classes], np.uint8)
  hues = [(0.61803398875 * i) % 1.0 for i in range(num_classes - 1)]
  rgb = [colorsys.hsv_to_rgb(h, 0.75, 0.95) for h in hues]
  return np.array([TN] + [tuple(round(255 * c) for c in v) for v in rgb], np.uint8)


def colour_map(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """[H, W] classes (IGNORE = grey) -> [H, W, 3] uint8."""
  labels = np.asarray(labels)
  if labels.size and labels.max() >= num_classes:
    raise ValueError(f"class {labels.max()} outside [0, {num_classes})")
  out = np.empty((*labels.shape, 3), np.uint8)
  out[:] = GREY
  known = labels >= 0
  out[known] = class_colours(num_classes)[labels[known]]
  return out


def error_colours(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
  """[H, W, 3] uint8 error map. Two classes (1 = positive): TN black, TP white, FP red, FN blue.
  More classes: correct white, wrong red. Ignored truth (-1): grey."""
  truth, pred = np.asarray(truth), np.asarray(pred)
  out = np.empty((*truth.shape, 3), np.uint8)
  out[:] = GREY
  scored = truth != IGNORE
  if num_classes == 2:
    for colour, t, p in ((TN, 0, 0), (TP, 1, 1), (FP, 0, 1), (FN, 1, 0)):
      out[scored & (truth == t) & (pred == p)] = colour
  else:
    out[scored & (truth == pred)] = TP
    out[scored & (truth != pred)] = FP
  return out


def geotiff_bytes(class_map: np.ndarray, *, crs=None, transform=None, bounds=None,
                  nodata: int | None = None) -> bytes:
  """One-band GeoTIFF of `class_map` [H, W] (uint8 or uint16), deflate-compressed.

  crs: anything rasterio takes ("EPSG:32631", a CRS); transform: an affine.Affine or its six
  coefficients (a, b, c, d, e, f); bounds: (left, bottom, right, top), used without transform.
  """
  import rasterio  # pylint: disable=g-import-not-at-top
  from rasterio.io import MemoryFile  # pylint: disable=g-import-not-at-top
  h, w = class_map.shape
  profile = dict(driver="GTiff", height=h, width=w, count=1, dtype=class_map.dtype.name,
                 compress="deflate")
  if crs:
    profile["crs"] = rasterio.crs.CRS.from_user_input(crs)
  if transform is not None:
    profile["transform"] = (transform if isinstance(transform, rasterio.Affine)
                            else rasterio.Affine(*transform))
  elif bounds is not None:
    left, bottom, right, top = (float(v) for v in bounds)
    profile["transform"] = rasterio.Affine((right - left) / w, 0.0, left,
                                           0.0, -(top - bottom) / h, top)
  if nodata is not None:
    profile["nodata"] = nodata
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
    with MemoryFile() as mem:
      with mem.open(**profile) as dst:
        dst.write(class_map, 1)
      return mem.read()


def write_prediction(ctx: EvalContext, key: str, scores: np.ndarray, *,
                     valid: np.ndarray | None = None, crs=None, transform=None, bounds=None,
                     folder: str = "predictions") -> dict[str, str]:
  """Writes the class map (GeoTIFF, PNG) and scores of one image; returns {kind: path}.

  Args:
    scores: [K, H, W] at the input's size (e.g. tiling.predict_tiled); class = argmax.
    valid: optional [H, W] bool, False = no data (nodata in the GeoTIFF, grey in the PNG).
    crs, transform, bounds: georeferencing of the input (geotiff_bytes).
  """
  scores = np.asarray(scores, np.float32)
  if scores.ndim != 3:
    raise ValueError(f"scores of {key!r} must be [K, H, W], got shape {scores.shape}")
  k = scores.shape[0]
  dtype = np.uint8 if k <= 255 else np.uint16
  class_map = scores.argmax(0).astype(dtype)
  shown = class_map.astype(np.int64)
  nodata = None
  if valid is not None:
    valid = np.asarray(valid, bool)
    if valid.shape != class_map.shape:
      raise ValueError(f"valid mask of {key!r} is {valid.shape}, scores {class_map.shape}")
    nodata = int(np.iinfo(dtype).max)
    class_map = np.where(valid, class_map, nodata).astype(dtype)
    shown = np.where(valid, shown, IGNORE)
  stem = _stem(folder, key)
  return {
      "geotiff": ctx.write_bytes(f"{stem}.tif", geotiff_bytes(
          class_map, crs=crs, transform=transform, bounds=bounds, nodata=nodata)),
      "png": ctx.write_bytes(f"{stem}.png", encode_png(colour_map(shown, k))),
      "scores": ctx.write_npz(f"{stem}_scores.npz", scores=scores, class_map=class_map),
  }


def rgb_composite(cube: np.ndarray, bands: Sequence[str],
                  percentiles: tuple[float, float] = (2.0, 98.0)) -> np.ndarray:
  """[C, H, W] -> [H, W, 3] uint8 of B4, B3, B2, each stretched between its percentiles."""
  rgb = np.asarray(cube, np.float64)[rgb_indices(bands)]
  out = np.zeros((*rgb.shape[1:], 3), np.uint8)
  for i, channel in enumerate(rgb):
    finite = channel[np.isfinite(channel)]
    if not finite.size:
      continue
    lo, hi = np.percentile(finite, percentiles)
    scaled = (channel - lo) / max(hi - lo, 1e-12)
    out[..., i] = np.round(255 * np.clip(np.nan_to_num(scaled), 0, 1))
  return out


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
  yi = np.minimum(np.arange(h) * img.shape[0] // h, img.shape[0] - 1)
  xi = np.minimum(np.arange(w) * img.shape[1] // w, img.shape[1] - 1)
  return img[yi][:, xi]


def panel_layout(height: int, width: int, num_pictures: int) -> dict[str, int]:
  """Pixel sizes of a panel of `num_pictures` images of [height, width]: tile_h, tile_w (each
  picture, longer side PANEL_TILE) and the whole panel's height and width."""
  scale = PANEL_TILE / max(height, width)
  th, tw = max(1, round(height * scale)), max(1, round(width * scale))
  return {"tile_h": th, "tile_w": tw,
          "height": th + PANEL_TITLE * 2 + PANEL_GAP * 2,
          "width": num_pictures * tw + (num_pictures + 1) * PANEL_GAP}


def panel_png(dates: Sequence[np.ndarray], bands: Sequence[str], truth: np.ndarray,
              pred: np.ndarray, *, num_classes: int, title: str = "") -> bytes:
  """PNG bytes of the panel (module docstring); size `panel_layout(H, W, len(dates) + 3)`.

  Args:
    dates: one [C, H, W] image per date (model input or raw); bands: their C band names.
    truth: [H, W] labels (-1 ignored); pred: [H, W] predicted classes.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg", force=True)
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  truth, pred = np.asarray(truth), np.asarray(pred)
  shape = truth.shape
  for name, arr in [(f"date {i}", np.asarray(d)[0]) for i, d in enumerate(dates)] + [
      ("prediction", pred)]:
    if arr.shape != shape:
      raise ValueError(f"{name} of panel {title!r} is {arr.shape}, truth is {shape}")
  pictures = [rgb_composite(d, bands) for d in dates]
  names = [f"RGB date {i + 1}" for i in range(len(dates))]
  err = ("errors (FP red, FN blue)" if num_classes == 2 else "errors (wrong red)")
  pictures += [colour_map(truth, num_classes), colour_map(pred, num_classes),
               error_colours(truth, pred, num_classes)]
  names += ["truth", "prediction", err]
  lay = panel_layout(*shape, len(pictures))
  fig = Figure(figsize=(lay["width"] / PANEL_DPI, lay["height"] / PANEL_DPI), dpi=PANEL_DPI,
               facecolor="white")
  for i, (pic, name) in enumerate(zip(pictures, names)):
    x0 = PANEL_GAP + i * (lay["tile_w"] + PANEL_GAP)
    fig.figimage(_resize_nearest(pic, lay["tile_h"], lay["tile_w"]), xo=x0, yo=PANEL_GAP,
                 origin="upper")
    fig.text((x0 + lay["tile_w"] / 2) / lay["width"],
             (PANEL_GAP + lay["tile_h"] + PANEL_TITLE / 2) / lay["height"], name,
             ha="center", va="center", fontsize=9)
  if title:
    fig.text(0.5, 1 - (PANEL_GAP + PANEL_TITLE / 2) / lay["height"], title, ha="center",
             va="center", fontsize=11, weight="bold")
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=PANEL_DPI, facecolor="white")
  return buf.getvalue()


def write_panel(ctx: EvalContext, key: str, dates: Sequence[np.ndarray], bands: Sequence[str],
                truth: np.ndarray, pred: np.ndarray, *, num_classes: int, title: str = "",
                folder: str = "panels") -> str:
  """Writes `<folder>/<key>.png` (panel_png, titled `title` or the key); returns the path."""
  return ctx.write_bytes(f"{_stem(folder, key)}.png",
                         panel_png(dates, bands, truth, pred, num_classes=num_classes,
                                   title=title or str(key)))
