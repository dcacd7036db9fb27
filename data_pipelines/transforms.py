"""Per-example transforms: record -> element, normalization, augmentation, eval resize-crop.

An *element* is a dict of numpy arrays for one example:
  cube  [C, H, W] (or [T, C, H, W] when num_dates = T > 1) in the configured band order (by
        name); the stored dtype after parsing, float32 from `Normalize` on
  label int32 [] (single) or float32 [K] multi-hot (multi), when configured
  mask  int32 [H, W] segmentation, when configured
  cube2 float32 like cube (second date, change detection), when configured
  key   str (record key), when configured

All classes are module-level and picklable (grain's multiprocessing workers use spawn).
Normalization modes and their arithmetic: `normalization.py`. A time series element keeps
its dates axis: one crop and one flip per example, applied to every date alike.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import grain
import numpy as np

from data_pipelines import example_codec
from data_pipelines import labels as labels_lib
from data_pipelines import normalization
from data_pipelines import resample
from data_pipelines import schema
from data_pipelines.normalization import NORMALIZATIONS

LABEL_TYPES = ("none", "single", "multi")
CROPS = ("resized", "window")   # training geometry: RandomAugment | RandomDenseCrop


@dataclasses.dataclass(frozen=True)
class ElementSpec:
  """What an element carries, derived from the data config."""
  bands: tuple[str, ...]
  num_dates: int = 1
  label_type: str = "none"
  num_classes: int = 0
  use_mask: bool = False
  use_cube2: bool = False
  with_keys: bool = False
  harmonize_offset: bool = True

  def __post_init__(self):
    if self.label_type not in LABEL_TYPES:
      raise ValueError(f"label_type {self.label_type!r} not in {LABEL_TYPES}")
    if self.label_type == "multi" and self.num_classes <= 0:
      raise ValueError("label_type='multi' needs num_classes > 0")
    if self.num_dates < 1:
      raise ValueError(f"num_dates must be >= 1, got {self.num_dates}")


def _dates(x: np.ndarray, key: str, num_dates: int) -> np.ndarray:
  """[C, H, W] or [1, C, H, W] when num_dates == 1, else exactly [num_dates, C, H, W]."""
  if x.ndim == 4 and x.shape[0] == 1 and num_dates == 1:
    return x[0]
  have = x.shape[0] if x.ndim == 4 else 1
  if have != num_dates:
    raise ValueError(f"record {key!r} holds {have} date(s) (cube {x.shape}) but "
                     f"data.num_dates is {num_dates}")
  return x


def _cube(rec: dict[str, Any], name: str, spec: ElementSpec) -> np.ndarray:
  """Selected bands, still in the stored dtype (Normalize makes float32 in the same pass)."""
  x = _dates(rec[name], rec.get("key", "?"), spec.num_dates)
  x = schema.select_bands(x, rec["bands"], spec.bands)
  offset = int(rec.get("radio_add_offset", 0))
  if spec.harmonize_offset and offset:
    x = np.maximum(x.astype(np.float32) + offset, 0.0)
  return x


def record_to_element(rec: dict[str, Any], spec: ElementSpec) -> dict[str, Any]:
  """Decoded record -> element (band selection by name, labels, optional extras)."""
  key = rec.get("key", "?")
  try:
    out: dict[str, Any] = {"cube": _cube(rec, "cube", spec)}
  except KeyError as e:
    raise KeyError(f"record {key!r}: {e}") from e
  if spec.label_type == "single":
    if "label" not in rec:
      raise KeyError(f"record {key!r} has no single 'label' (label_type='single')")
    out["label"] = np.int32(rec["label"])
  elif spec.label_type == "multi":
    if "labels" not in rec:
      raise KeyError(f"record {key!r} has no multi-label 'labels' (label_type='multi')")
    out["label"] = labels_lib.multi_hot(rec["labels"], spec.num_classes)
  if spec.use_mask:
    if "mask" not in rec:
      raise KeyError(f"record {key!r} has no 'mask'")
    out["mask"] = rec["mask"].astype(np.int32)
  if spec.use_cube2:
    if "cube2" not in rec:
      raise KeyError(f"record {key!r} has no 'cube2'")
    out["cube2"] = _cube(rec, "cube2", spec)
  if spec.with_keys:
    out["key"] = str(key)
  return out


class ParseExample(grain.transforms.Map):
  """Serialized tf.train.Example bytes -> element."""

  def __init__(self, spec: ElementSpec):
    self.spec = spec

  def map(self, data: bytes) -> dict[str, Any]:
    return record_to_element(example_codec.decode_record(data), self.spec)


# ------------------------------------------------------------------ normalization

class Normalize(grain.transforms.Map):
  """Normalizes "cube" (and "cube2") with one of `normalization.NORMALIZATIONS` (per date)."""

  def __init__(self, mode: str, mean: np.ndarray | None = None, std: np.ndarray | None = None,
               eps: float = 1e-12, quantize: bool = True):
    if mode not in NORMALIZATIONS:
      raise ValueError(f"normalization {mode!r} not in {NORMALIZATIONS}")
    if mode in ("zscore", "sentinel_clip") and (mean is None or std is None):
      raise ValueError(f"normalization {mode!r} needs mean and std")
    self.mode, self.eps, self.quantize = mode, eps, quantize
    self.mean = None if mean is None else np.asarray(mean, np.float32)
    self.std = None if std is None else np.asarray(std, np.float32)

  def map(self, el: dict[str, Any]) -> dict[str, Any]:
    el = dict(el)
    for k in ("cube", "cube2"):
      if k in el:
        el[k] = normalization.apply(el[k], self.mode, self.mean, self.std, self.eps,
                                    self.quantize)
    return el


# ------------------------------------------------------------------ geometry

def random_resized_crop_box(rng: np.random.Generator, h: int, w: int,
                            scale: tuple[float, float], ratio: tuple[float, float],
                            ) -> tuple[int, int, int, int]:
  """(top, left, height, width) as torchvision's RandomResizedCrop.get_params."""
  area = h * w
  log_r = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(10):
    target = area * rng.uniform(scale[0], scale[1])
    aspect = math.exp(rng.uniform(*log_r))
    cw = int(round(math.sqrt(target * aspect)))
    ch = int(round(math.sqrt(target / aspect)))
    if 0 < cw <= w and 0 < ch <= h:
      return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
  in_ratio = w / h   # fallback: central crop with the closest allowed aspect ratio
  if in_ratio < min(ratio):
    cw, ch = w, int(round(w / min(ratio)))
  elif in_ratio > max(ratio):
    ch, cw = h, int(round(h * max(ratio)))
  else:
    cw, ch = w, h
  return (h - ch) // 2, (w - cw) // 2, ch, cw


def _crop_resize(x: np.ndarray, box, size: int, method: str, antialias: bool) -> np.ndarray:
  top, left, ch, cw = box
  crop = x[..., top:top + ch, left:left + cw]   # crop first, then resize (torchvision order)
  return resample.resize(crop, (size, size), method, antialias=antialias)


class RandomAugment(grain.transforms.RandomMap):
  """Training geometry: RandomResizedCrop to `size` then random horizontal/vertical flips.

  The same crop and flips apply to cube, cube2 (interpolated) and mask (nearest).
  """

  def __init__(self, size: int, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
               method: str = "bicubic", antialias: bool = True, hflip_prob: float = 0.5,
               vflip_prob: float = 0.0):
    self.size, self.scale, self.ratio = int(size), tuple(scale), tuple(ratio)
    self.method, self.antialias = method, antialias
    self.hflip_prob, self.vflip_prob = hflip_prob, vflip_prob

  def random_map(self, el: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    h, w = el["cube"].shape[-2:]
    box = random_resized_crop_box(rng, h, w, self.scale, self.ratio)
    hflip = rng.uniform() < self.hflip_prob
    vflip = rng.uniform() < self.vflip_prob
    out = dict(el)
    for k in ("cube", "cube2", "mask"):
      if k in el:
        y = _crop_resize(el[k], box, self.size, "nearest" if k == "mask" else self.method,
                         self.antialias)
        if hflip:
          y = y[..., ::-1]
        if vflip:
          y = y[..., ::-1, :]
        out[k] = y
    return out


class EvalResizeCrop(grain.transforms.Map):
  """Deterministic eval geometry: Resize(int(size / crop_pct)) then CenterCrop(size)."""

  def __init__(self, size: int, crop_pct: float = 0.875, method: str = "bicubic",
               antialias: bool = True):
    self.size, self.crop_pct, self.method, self.antialias = int(size), crop_pct, method, antialias

  def _matrix(self, n: int, method: str) -> np.ndarray:
    big = int(self.size / self.crop_pct)
    top = int(round((big - self.size) / 2.0))
    return resample.axis_matrix(n, big, method, antialias=self.antialias)[top:top + self.size]

  def map(self, el: dict[str, Any]) -> dict[str, Any]:
    out = dict(el)
    for k in ("cube", "cube2", "mask"):
      if k in el:
        x = el[k]
        h, w = x.shape[-2:]
        if k == "mask":
          rows = np.argmax(self._matrix(h, "nearest"), axis=1)
          cols = np.argmax(self._matrix(w, "nearest"), axis=1)
          out[k] = x[..., rows[:, None], cols[None, :]]
        else:
          mh, mw = self._matrix(h, self.method), self._matrix(w, self.method)
          out[k] = np.matmul(np.matmul(mh, x.astype(np.float32, copy=False)), mw.T)
    return out


def _pad_to(x: np.ndarray, size: int, value: int | None) -> np.ndarray:
  """Pads [..., H, W] at the bottom/right to at least size x size (edge pixels, or `value`)."""
  ph, pw = max(0, size - x.shape[-2]), max(0, size - x.shape[-1])
  if not (ph or pw):
    return x
  pad = [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)]
  if value is None:
    return np.pad(x, pad, mode="edge")
  return np.pad(x, pad, mode="constant", constant_values=value)


class RandomDenseCrop(grain.transforms.RandomMap):
  """Dense training geometry: a random size x size window (no resizing), then random
  horizontal / vertical flips and, with `rot90`, a random k x 90 degree rotation (k in 0..3).

  The same window, flips and rotation apply to cube, cube2 and mask. An image smaller than
  the window is padded at the bottom/right: edge pixels for the cubes, -1 (ignored) for the
  mask.
  """

  def __init__(self, size: int, hflip_prob: float = 0.5, vflip_prob: float = 0.0,
               rot90: bool = False):
    self.size, self.hflip_prob, self.vflip_prob = int(size), hflip_prob, vflip_prob
    self.rot90 = bool(rot90)

  def random_map(self, el: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    h, w = el["cube"].shape[-2:]
    top = int(rng.integers(0, max(h - self.size, 0) + 1))
    left = int(rng.integers(0, max(w - self.size, 0) + 1))
    hflip = rng.uniform() < self.hflip_prob
    vflip = rng.uniform() < self.vflip_prob
    turns = int(rng.integers(0, 4)) if self.rot90 else 0
    out = dict(el)
    for k in ("cube", "cube2", "mask"):
      if k in el:
        y = el[k][..., top:top + self.size, left:left + self.size]
        y = _pad_to(y, self.size, -1 if k == "mask" else None)
        if hflip:
          y = y[..., ::-1]
        if vflip:
          y = y[..., ::-1, :]
        if turns:
          y = np.rot90(y, turns, axes=(-2, -1))
        out[k] = np.ascontiguousarray(y)
    return out
