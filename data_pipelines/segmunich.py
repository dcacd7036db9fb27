"""SegMunich (Sentinel-2 land cover over Munich, 13 classes) in its published layout.

  <root>/dataset/train.txt, test.txt     one image name per line
  <root>/<split>/img/<name>.tif          10 bands, 128 x 128
  <root>/<split>/label/<name>.tif        class codes

Bands (the GFM-Bench data card): B01 B02 B03 B04 B05 B06 B07 B8A B11 B12 (`SEGMUNICH_BANDS`).
Two ways to make the model's 12 channels (`channels`):

* "by_name" (default): each band goes to its own slot of the model order
  (schema.SPECTRALGPT_BANDS); the two bands SegMunich lacks, B08 (833 nm) and B09 (945 nm),
  are filled with the available band nearest in wavelength (B8A, 865 nm, for both).
* "official_mean_twice": the official input, the 10 bands followed by their per-pixel mean
  twice, fed to the model by position. The model then reads B8A in its B08 slot, B11 in B8A,
  B12 in B09, the mean in B11 and B12; the record names the channels by those slots so that
  band selection keeps the official positions.

Labels: the official remap 21->1, 22->2, 23->3, 31->4, 32->6, 33->7, 41->8, 13->9, 14->10
(other codes unchanged); 255 (the official cross-entropy ignore index) becomes -1; any value
outside 0..12 after the remap is refused naming the file. Class 0 is counted as a class (the
official mIoU covers all 13); the dataset's class names are not recorded in the spec, so
classes are named by index.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines import geotiff
from data_pipelines import local_raster
from data_pipelines import schema
from data_pipelines import splits
from data_pipelines.errors import BadInputError

SEGMUNICH_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
CHANNELS = ("by_name", "official_mean_twice")
NUM_CLASSES = 13
CLASS_NAMES = ("class_0 (background)",) + tuple(f"class_{i}" for i in range(1, NUM_CLASSES))
LABEL_REMAP = {21: 1, 22: 2, 23: 3, 31: 4, 32: 6, 33: 7, 41: 8, 13: 9, 14: 10}
IGNORE_CODE = 255
SPLITS = ("train", "test")


def list_names(root: str | pathlib.Path, split: str) -> list[str]:
  """Image names of `<root>/dataset/<split>.txt` (first token per line, extension dropped)."""
  if split not in SPLITS:
    raise ValueError(f"SegMunich split {split!r} not in {SPLITS}")
  path = pathlib.Path(root) / "dataset" / f"{split}.txt"
  if not path.exists():
    raise FileNotFoundError(f"{path} not found: data.paths must be the SegMunich root "
                            "(dataset/, train/, test/)")
  names = [splits.example_id(line.split()[0]) for line in path.read_text().splitlines()
           if line.strip()]
  if not names:
    raise BadInputError(path, "names", "lists no image")
  return names


def remap_labels(codes: np.ndarray, path: str | pathlib.Path) -> np.ndarray:
  """Class codes as stored -> int32 classes 0..12 (-1 where the code is 255)."""
  out = codes.astype(np.int32)
  for src, dst in LABEL_REMAP.items():
    out[codes == src] = dst
  out[codes == IGNORE_CODE] = -1
  bad = sorted(int(v) for v in np.unique(out[(out < -1) | (out >= NUM_CLASSES)]))
  if bad:
    raise BadInputError(path, "label", f"codes {bad} are neither remapped "
                        f"({sorted(LABEL_REMAP)}) nor classes 0..{NUM_CLASSES - 1} nor "
                        f"{IGNORE_CODE} (ignored)")
  return out


def nearest_fill(cube: np.ndarray, have: Sequence[str],
                 want: Sequence[str] = schema.SPECTRALGPT_BANDS) -> np.ndarray:
  """[len(have), H, W] -> [len(want), H, W]: each wanted band from itself, or from the
  available band nearest in central wavelength."""
  centers = np.array([schema.BANDS[b].center_nm for b in have])
  idx = [list(have).index(b) if b in have else
         int(np.argmin(np.abs(centers - schema.BANDS[b].center_nm))) for b in want]
  return cube[idx]


def to_model_channels(cube: np.ndarray, channels: str,
                      bands: Sequence[str] = SEGMUNICH_BANDS) -> np.ndarray:
  """The 10 SegMunich bands [10, H, W] -> the model's 12 channels (see module docstring)."""
  if channels == "by_name":
    return nearest_fill(cube, bands)
  if channels == "official_mean_twice":
    mean = cube.astype(np.float32).mean(axis=0, keepdims=True)
    return np.concatenate([cube.astype(np.float32), mean, mean])
  raise ValueError(f"segmunich channels {channels!r} not in {CHANNELS}")


def _read_label(path: pathlib.Path) -> np.ndarray:
  if not path.exists():
    raise BadInputError(path, "file", "label file not found")
  with local_raster.open_local(path) as src:
    return src.read(1)


def load_image(root: str | pathlib.Path, split: str, name: str, *,
               channels: str = "by_name",
               bands: Sequence[str] = SEGMUNICH_BANDS) -> dict[str, Any]:
  """One image: cube [12, H, W] (model order), mask int32 [H, W], key = name, crs, bounds."""
  base = pathlib.Path(root) / split
  img_path, label_path = base / "img" / f"{name}.tif", base / "label" / f"{name}.tif"
  cube, meta = geotiff.read_geotiff(img_path, bands=list(bands))
  mask = remap_labels(_read_label(label_path), label_path)
  if mask.shape != cube.shape[1:]:
    raise BadInputError(label_path, "shape", f"label {mask.shape} != image {cube.shape[1:]}")
  return {"cube": to_model_channels(cube, channels, bands),
          "bands": list(schema.SPECTRALGPT_BANDS), "mask": mask, "key": name,
          "crs": meta["crs"], "bounds": meta["bounds"], "source": str(img_path)}


def split_records(root: str | pathlib.Path, split: str = "train", *,
                  channels: str = "by_name") -> list[dict[str, Any]]:
  """Every image of a split as a record, in list order."""
  if channels not in CHANNELS:
    raise ValueError(f"segmunich channels {channels!r} not in {CHANNELS}")
  return [load_image(root, split, name, channels=channels) for name in list_names(root, split)]
