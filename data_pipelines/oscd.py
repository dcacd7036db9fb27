"""Onera Satellite Change Detection (OSCD) in its published layout: whole-city records.

Layout under a root (the unzipped downloads side by side):

  Onera Satellite Change Detection dataset - Images/
    train.txt, test.txt            the official city lists (comma separated)
    <city>/imgs_1/*_B01.tif .. *_B12.tif, *_B8A.tif   date 1, one uint16 GeoTIFF per band
    <city>/imgs_2/...                                 date 2
    <city>/dates.txt               "date_1: YYYYMMDD" / "date_2: YYYYMMDD"
  Onera Satellite Change Detection dataset - Train Labels/<city>/cm/<city>-cm.tif
  Onera Satellite Change Detection dataset - Test Labels/<city>/cm/<city>-cm.tif

Each band sits at its native resolution (10 m full size, 20 m half, 60 m a sixth). A city's
grid is its change map's size (the 10 m grid of the older image, as the dataset README says).
Every band is upsampled by its integer factor (20 m: x2, 60 m: x6; bicubic by default), then
cut to the grid at the bottom/right; a date a few pixels short of the grid (hongkong's second
date is 693 x 538 on a 695 x 540 grid) is padded there by repeating its edge pixels, at most
`MAX_PAD_PX` per axis. Pixel (0, 0) of every band is the grid's top-left corner.

Change maps: the dataset README says 0 = no change, 1 = change, but the shipped tifs hold
1 = no change, 2 = change. `normalize_change_map` reads the values found and maps either
convention to {0, 1}; anything else is refused naming the file and the values.
"""

from __future__ import annotations

import pathlib
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from data_pipelines import local_raster
from data_pipelines import resample
from data_pipelines import schema
from data_pipelines.errors import BadInputError

IMAGES_DIR = "Onera Satellite Change Detection dataset - Images"
LABEL_DIRS = ("Onera Satellite Change Detection dataset - Train Labels",
              "Onera Satellite Change Detection dataset - Test Labels")
DATE_DIRS = ("imgs_1", "imgs_2")
CLASS_NAMES = ("no change", "change")
LABEL_CONVENTIONS = ("auto", "one_two", "zero_one")
MAX_PAD_PX = 8
_BAND_FILE = re.compile(r"_(B\d\d|B8A)\.tif$", re.IGNORECASE)


# ------------------------------------------------------------------ layout

def images_dir(root: str | pathlib.Path) -> pathlib.Path:
  """`<root>/Onera Satellite Change Detection dataset - Images` (raises if absent)."""
  path = pathlib.Path(root) / IMAGES_DIR
  if not path.is_dir():
    raise FileNotFoundError(f"{path} not found: data.paths must be the OSCD root holding "
                            f"'{IMAGES_DIR}' and '{LABEL_DIRS[0]}'")
  return path


def city_names(root: str | pathlib.Path) -> list[str]:
  """Every city folder under the images folder (sorted)."""
  return sorted(p.name for p in images_dir(root).iterdir() if (p / DATE_DIRS[0]).is_dir())


def official_cities(root: str | pathlib.Path, split: str) -> list[str]:
  """The cities of the dataset's own `train.txt` / `test.txt` (in file order)."""
  path = images_dir(root) / f"{split}.txt"
  if not path.exists():
    raise FileNotFoundError(f"{path} not found (the official OSCD split lists); name the "
                            "cities instead (data.oscd.cities='a,b,c', ingest --cities a,b,c)")
  cities = [c.strip() for c in re.split(r"[,\s]+", path.read_text()) if c.strip()]
  if not cities:
    raise BadInputError(path, "cities", "lists no city")
  return cities


def label_path(root: str | pathlib.Path, city: str) -> pathlib.Path:
  """The change map of `city` in the train or test label folder."""
  tried = [pathlib.Path(root) / d / city / "cm" / f"{city}-cm.tif" for d in LABEL_DIRS]
  for path in tried:
    if path.exists():
      return path
  raise FileNotFoundError(f"no change map for city {city!r}: looked for "
                          f"{[str(p) for p in tried]}")


def read_dates(city_dir: pathlib.Path) -> tuple[str, str]:
  """('YYYY-MM-DD', 'YYYY-MM-DD') of imgs_1 and imgs_2 from `dates.txt`."""
  path = city_dir / "dates.txt"
  if not path.exists():
    raise BadInputError(path, "file", "dates.txt not found")
  found = dict(re.findall(r"date_([12])\s*:\s*(\d{8})", path.read_text()))
  if set(found) != {"1", "2"}:
    raise BadInputError(path, "date", "expected lines 'date_1: YYYYMMDD' and 'date_2: YYYYMMDD'")
  return tuple(f"{d[:4]}-{d[4:6]}-{d[6:]}" for d in (found["1"], found["2"]))


def band_files(date_dir: pathlib.Path) -> dict[str, pathlib.Path]:
  """Band name -> GeoTIFF of one date folder (names from the `_Bxx.tif` suffix)."""
  if not date_dir.is_dir():
    raise BadInputError(date_dir, "file", "date folder not found")
  out: dict[str, pathlib.Path] = {}
  for f in sorted(date_dir.iterdir()):
    m = _BAND_FILE.search(f.name)
    if m:
      band = schema.normalize_band_name(m.group(1))
      if band in out:
        raise BadInputError(f, band, f"second file for band {band} (first: {out[band].name})")
      out[band] = f
  return out


# ------------------------------------------------------------------ reading

def _read_single_band(path: pathlib.Path) -> np.ndarray:
  import rasterio  # pylint: disable=g-import-not-at-top
  try:
    with warnings.catch_warnings():   # OSCD images carry no geotransform
      warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
      with local_raster.open_local(path) as src:
        if src.count != 1:
          raise BadInputError(path, "bands", f"expected one band per file, found {src.count}")
        return src.read(1)
  except BadInputError:
    raise
  except Exception as e:  # rasterio/GDAL errors for unreadable files
    raise BadInputError(path, "file", f"cannot read GeoTIFF: {e}") from e


def fit_to_grid(x: np.ndarray, grid_hw: tuple[int, int], path: pathlib.Path,
                band: str) -> np.ndarray:
  """[h, w] -> [H, W]: cut at the bottom/right, or pad there with edge pixels (<= MAX_PAD_PX)."""
  pad = [max(0, g - s) for g, s in zip(grid_hw, x.shape)]
  if max(pad) > MAX_PAD_PX:
    raise BadInputError(path, band, f"band upsampled to {x.shape} is more than {MAX_PAD_PX} px "
                        f"short of the city grid {tuple(grid_hw)} (the change map's size)")
  if max(pad):
    x = np.pad(x, ((0, pad[0]), (0, pad[1])), mode="edge")
  return x[:grid_hw[0], :grid_hw[1]]


def read_date(date_dir: pathlib.Path, grid_hw: tuple[int, int],
              bands: Sequence[str] = schema.SPECTRALGPT_BANDS,
              resampling: str = "bicubic") -> np.ndarray:
  """One date of a city on its 10 m grid: float32 DN [len(bands), H, W], in `bands` order."""
  files = band_files(date_dir)
  missing = [b for b in bands if b not in files]
  if missing:
    raise BadInputError(date_dir, missing[0], f"no GeoTIFF for band(s) {missing} "
                        f"(found {sorted(files)})")
  out = np.empty((len(bands),) + tuple(grid_hw), np.float32)
  for i, band in enumerate(bands):
    raw = _read_single_band(files[band])
    factor = schema.BANDS[band].resolution_m // 10
    up = raw.astype(np.float32)
    if factor > 1:
      up = resample.resize(up, (raw.shape[0] * factor, raw.shape[1] * factor), resampling)
      if resampling != "nearest":
        np.maximum(up, 0.0, out=up)   # cubic overshoot below zero is not a DN
    out[i] = fit_to_grid(up, grid_hw, files[band], band)
  return out


def normalize_change_map(values: np.ndarray, path: str | pathlib.Path,
                         convention: str = "auto") -> np.ndarray:
  """A change map as found -> int32 {0 = no change, 1 = change}.

  convention: "one_two" (1/2, the shipped tifs), "zero_one" (0/1, the dataset README) or
  "auto": 1/2 when a 2 is present, 0/1 when a 0 is present. A map holding only 1s fits both
  and is refused under "auto" (name the convention), as is any value outside the convention.
  """
  if convention not in LABEL_CONVENTIONS:
    raise ValueError(f"label convention {convention!r} not in {LABEL_CONVENTIONS}")
  found = sorted(int(v) for v in np.unique(values))
  fits = {"one_two": set(found) <= {1, 2}, "zero_one": set(found) <= {0, 1}}
  if convention == "auto":
    matches = [c for c, ok in fits.items() if ok]
    if len(matches) != 1:
      why = ("fits both 1/2 and 0/1; set the label convention ('one_two' or 'zero_one')"
             if matches else "fit neither 1 = no change / 2 = change (shipped tifs) nor "
             "0 = no change / 1 = change (dataset README)")
      raise BadInputError(path, "change map", f"values {found} {why}")
    convention = matches[0]
  elif not fits[convention]:
    raise BadInputError(path, "change map", f"values {found} do not fit the {convention!r} "
                        "convention")
  offset = 1 if convention == "one_two" else 0
  return values.astype(np.int32) - offset


def load_city(root: str | pathlib.Path, city: str, *,
              bands: Sequence[str] = schema.SPECTRALGPT_BANDS, resampling: str = "bicubic",
              label_convention: str = "auto") -> dict[str, Any]:
  """One city as a record: cube, cube2 float32 DN [C, H, W] (H, W = change map size),
  mask int32 [H, W] in {0, 1}, bands, key = city, date, date2, source."""
  city_dir = images_dir(root) / city
  if not city_dir.is_dir():
    raise BadInputError(city_dir, "city", f"no such city (have {city_names(root)})")
  cm_path = label_path(root, city)
  raw = _read_single_band(cm_path)
  mask = normalize_change_map(raw, cm_path, label_convention)
  date1, date2 = read_dates(city_dir)
  cubes = [read_date(city_dir / d, mask.shape, bands, resampling) for d in DATE_DIRS]
  return {"cube": cubes[0], "cube2": cubes[1], "mask": mask, "bands": list(bands),
          "key": city, "date": date1, "date2": date2, "source": str(city_dir)}


def change_fraction(masks: Sequence[np.ndarray]) -> float:
  """Share of change pixels (1) among labelled pixels (>= 0) over all `masks`.

  The official OSCD class weights are built from this over the training cities.
  """
  change = sum(int((m == 1).sum()) for m in masks)
  valid = sum(int((m >= 0).sum()) for m in masks)
  if valid == 0:
    raise ValueError("no labelled pixel in the given change maps")
  return change / valid
