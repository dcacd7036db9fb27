"""EuroSAT-MS GeoTIFF folders (`<Class>/<Class>_<n>.tif`, 13 bands B01..B12 then B8A).

  files = list_files(root)              # {"AnnualCrop": [path, ...], ...} in file-number order
  cube, label = read_file(path)         # [12, 64, 64] float32 in SPECTRALGPT_BANDS order, int
  verify(root)                          # SHA256SUMS.txt check; returns the files checked

The class is the parent folder's name, its index that of `labels.EUROSAT_CLASSES`
(alphabetical). The cube keeps the digital numbers (reflectance x 10000) and drops B10 (the
model takes the 12 L2A bands); bands are picked by name from `schema.EUROSAT_BANDS`, never by
position. `items` lists the files for `ingest --source eurosat` (optionally only those of a
split file).
"""

from __future__ import annotations

import functools
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines import labels as labels_lib
from data_pipelines import schema
from data_pipelines.errors import BadInputError
from data_pipelines.shard_writer import Item

CLASSES: tuple[str, ...] = labels_lib.EUROSAT_CLASSES
FILE_BANDS: tuple[str, ...] = schema.EUROSAT_BANDS        # plane order inside each file
MODEL_BANDS: tuple[str, ...] = schema.SPECTRALGPT_BANDS   # order of the returned cube
_NUMBER = re.compile(r"_(\d+)$")
LABEL_INFO = {"type": "single", "class_names": list(CLASSES)}   # ingest manifest "labels"


def _file_number(path: pathlib.Path) -> tuple[int, str]:
  m = _NUMBER.search(path.stem)
  return (int(m.group(1)) if m else -1, path.name)


def list_files(root: str | pathlib.Path) -> dict[str, list[pathlib.Path]]:
  """{class name: its .tif files sorted by file number} for the class folders under `root`."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise BadInputError(root, "file", "not a folder of EuroSAT class folders")
  out = {}
  for name in CLASSES:
    folder = root / name
    if folder.is_dir():
      files = [f for f in folder.iterdir() if f.suffix.lower() in (".tif", ".tiff")]
      out[name] = sorted(files, key=_file_number)
  unknown = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name not in CLASSES)
  if unknown:
    raise BadInputError(root / unknown[0], "label", f"folder is not a EuroSAT class "
                        f"{list(CLASSES)}")
  if not any(out.values()):
    raise BadInputError(root, "file", "no EuroSAT .tif files in its class folders")
  return out


def label_of(path: str | pathlib.Path) -> int:
  """Class index of a file from its parent folder's name."""
  parent = pathlib.Path(path).parent.name
  if parent not in CLASSES:
    raise BadInputError(path, "label", f"parent folder {parent!r} is not a EuroSAT class")
  return CLASSES.index(parent)


def read_file(path: str | pathlib.Path) -> tuple[np.ndarray, int]:
  """(cube [12, H, W] float32 DN in `MODEL_BANDS` order, class index) of one EuroSAT tif."""
  from data_pipelines import geotiff  # pylint: disable=g-import-not-at-top
  label = label_of(path)
  cube, meta = geotiff.read_geotiff(path, bands=FILE_BANDS)
  return schema.select_bands(cube.astype(np.float32), meta["bands"], MODEL_BANDS), label


def verify(root: str | pathlib.Path) -> int:
  """Checks every file under `root` listed in its SHA256SUMS.txt; returns how many."""
  from data_pipelines.checksums import verify_sha256sums  # pylint: disable=g-import-not-at-top
  return verify_sha256sums(root)


def _load(path: str, key: str) -> dict[str, Any]:
  cube, label = read_file(path)
  # stored as uint16: the DN were uint16 in the file, so the cast is exact
  return {"cube": cube.astype(np.uint16), "bands": list(MODEL_BANDS), "label": label,
          "label_names": [CLASSES[label]], "key": key, "source": path}


def items(roots: Sequence[str], *, split_file: str = "", verify_sha256: bool = False,
          ) -> list[Item]:
  """One item per file under `roots` (class order, then file number); keys are
  `<Class>/<file>` and `split_file` (data_pipelines.splits ids) keeps only the files listed."""
  from data_pipelines import splits  # pylint: disable=g-import-not-at-top
  keep = splits.read_split_file(split_file) if split_file else None
  out = []
  for root in roots:
    if verify_sha256:
      verify(root)
    for name, files in list_files(root).items():
      for f in files:
        key = f"{name}/{f.name}"
        if keep is None or splits.example_id(key) in keep:
          out.append(Item(key, functools.partial(_load, str(f), key)))
  return out
