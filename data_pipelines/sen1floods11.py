"""Sen1Floods11 hand-labelled chips cut into tiles: a small real single-label task.

A chip is `S2Hand/<id>_S2Hand.tif` (13 L1C bands B1..B12 with B10, int16 DN, 512 x 512) and
`LabelHand/<id>_LabelHand.tif` (int16: -1 no data, 0 land, 1 water). Each chip is cut into
(512 / tile)^2 tiles; a tile's label is the number of `thresholds` its water share exceeds,
the share being water pixels over *labelled* (>= 0) pixels. One threshold (0.25) gives the
binary "water covers more than 25%"; two (e.g. 0.1, 0.5) give three share bins. The label tile
rides along as "mask" (-1 = ignore) for segmentation. `chip_records` gives the chips whole
(the `sen1floods11_seg` segmentation source, data_pipelines.dense).

Tile keys are `<id>_r<row>_c<col>` (row-major), the ids split files list. Nothing is copied:
the data config points at the chip directory (`data.source="sen1floods11_tiles"`,
`data.paths=../shared/data/sen1floods11_s2_chip`).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines import geotiff
from data_pipelines import local_raster
from data_pipelines.checksums import verify_sha256sums
from data_pipelines.errors import BadInputError

S2_DIR, LABEL_DIR = "S2Hand", "LabelHand"


def chip_ids(root: str | pathlib.Path) -> list[str]:
  """Sorted chip ids with both an S2Hand image and a LabelHand label."""
  root = pathlib.Path(root)
  ids = sorted(p.name.removesuffix("_S2Hand.tif") for p in (root / S2_DIR).glob("*_S2Hand.tif"))
  if not ids:
    raise FileNotFoundError(f"no {S2_DIR}/*_S2Hand.tif under {root}")
  missing = [i for i in ids if not (root / LABEL_DIR / f"{i}_LabelHand.tif").exists()]
  if missing:
    raise FileNotFoundError(f"{root}: no {LABEL_DIR} label for chips {missing}")
  return ids


def share_label(label_tile: np.ndarray, thresholds: Sequence[float]) -> tuple[int, float]:
  """(class, water share): class = how many thresholds the share of water exceeds."""
  valid = label_tile >= 0
  share = float((label_tile == 1).sum() / max(int(valid.sum()), 1))
  return int(sum(share > t for t in thresholds)), share


LABEL_VALUES = (-1, 0, 1)   # no data (ignored), land, water
CLASS_NAMES = ("land", "water")


def _read_label(path: pathlib.Path) -> np.ndarray:
  """The hand label as int32 [H, W] in {-1, 0, 1} (raises naming the file otherwise)."""
  with local_raster.open_local(path) as src:
    label = src.read(1)
  bad = sorted(set(int(v) for v in np.unique(label)) - set(LABEL_VALUES))
  if bad:
    raise BadInputError(path, "label", f"values {bad} outside {LABEL_VALUES} "
                        "(-1 no data, 0 land, 1 water)")
  return label.astype(np.int32)


def chip_record(root: str | pathlib.Path, cid: str) -> dict[str, Any]:
  """One chip whole, for segmentation: cube [13, H, W] (the file's dtype, band names from the
  file), mask int32 [H, W] (-1 ignored, 0 land, 1 water), key = chip id, crs, bounds, source."""
  root = pathlib.Path(root)
  cube, meta = geotiff.read_geotiff(root / S2_DIR / f"{cid}_S2Hand.tif")  # names from file
  label_file = root / LABEL_DIR / f"{cid}_LabelHand.tif"
  label = _read_label(label_file)
  if label.shape != cube.shape[1:]:
    raise BadInputError(label_file, "shape", f"label {label.shape} != image {cube.shape[1:]}")
  return {"cube": cube, "bands": list(meta["bands"]), "mask": label, "key": cid,
          "crs": meta["crs"], "bounds": meta["bounds"], "source": meta["source"]}


def chip_records(root: str | pathlib.Path, *,
                 verify_sha256: bool = False) -> list[dict[str, Any]]:
  """Every chip under `root` whole (`chip_record`), in id order."""
  if verify_sha256:
    verify_sha256sums(root)
  return [chip_record(root, cid) for cid in chip_ids(root)]


def tile_records(root: str | pathlib.Path, *, tile_size: int = 128,
                 thresholds: Sequence[float] = (0.25,),
                 verify_sha256: bool = False) -> list[dict[str, Any]]:
  """Every tile of every chip under `root` as a record (cube [13, t, t] int16, label, mask)."""
  root = pathlib.Path(root)
  thresholds = tuple(float(t) for t in thresholds)
  if list(thresholds) != sorted(thresholds) or not thresholds:
    raise ValueError(f"thresholds must be a non-empty increasing list, got {thresholds}")
  if verify_sha256:
    verify_sha256sums(root)
  out = []
  for cid in chip_ids(root):
    cube, meta = geotiff.read_geotiff(root / S2_DIR / f"{cid}_S2Hand.tif")  # names from file
    label = _read_label(root / LABEL_DIR / f"{cid}_LabelHand.tif")
    h, w = cube.shape[1:]
    if label.shape != (h, w) or h % tile_size or w % tile_size:
      raise BadInputError(root / LABEL_DIR, "shape", f"label {label.shape} vs image {(h, w)} "
                          f"must match and divide into {tile_size}-pixel tiles")
    for r in range(h // tile_size):
      for c in range(w // tile_size):
        rows = slice(r * tile_size, (r + 1) * tile_size)
        cols = slice(c * tile_size, (c + 1) * tile_size)
        cls, share = share_label(label[rows, cols], thresholds)
        out.append({"cube": np.ascontiguousarray(cube[:, rows, cols]),
                    "bands": list(meta["bands"]), "label": cls,
                    "num_classes": len(thresholds) + 1, "water_share": share,
                    "mask": np.ascontiguousarray(label[rows, cols]),
                    "key": f"{cid}_r{r}_c{c}", "source": meta["source"], "crs": meta["crs"]})
  return out
