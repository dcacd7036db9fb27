"""Prediction outputs: finished rows kept as strips while the run goes, one COG at the end.

While it runs, `<out>.partial/` holds `state.json` (what is being predicted: a rerun with other
settings is refused unless --overwrite) and one `rows_<r0>.npz` per finished band of rows
(written atomically: a strip present is a finished band; a rerun skips it). When every strip
is there, the strips are copied row by row into a tiled, deflate-compressed GeoTIFF with the
scene's CRS, transform and nodata, converted to a Cloud-Optimized GeoTIFF (GDAL's COG driver:
512 px tiles, overviews), and renamed onto `<out>` (atomic): `<out>` exists only complete. The
side files (`<stem>_probabilities.tif`, `<stem>.csv`, `<out>.json`) are put in place before it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import hashlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data_pipelines import storage
from data_pipelines.atomic_io import atomic_write, atomic_write_bytes, atomic_write_json

CLASS_NODATA = 255


class PartialRun:
  """`<out>.partial/`: the run's state and finished strips."""

  def __init__(self, out: str | os.PathLike, facts: Mapping[str, Any], overwrite: bool = False):
    self.out = pathlib.Path(out)
    self.dir = self.out.with_name(self.out.name + ".partial")
    self.facts = json.loads(json.dumps(dict(facts), default=str))
    if self.out.exists() and not overwrite:
      raise FileExistsError(f"{self.out} exists")
    if overwrite and self.dir.exists():
      shutil.rmtree(self.dir, ignore_errors=True)

  def start(self) -> None:
    """Creates the folder, or checks that the one found was started with the same facts."""
    state = self.dir / "state.json"
    if state.exists():
      found = json.loads(state.read_text())
      if found != self.facts:
        diff = sorted(k for k in set(found) | set(self.facts)
                      if found.get(k) != self.facts.get(k))
        raise FileExistsError(f"{self.dir} holds an unfinished run with other settings "
                              f"({diff}); pass --overwrite to start again")
      return
    self.dir.mkdir(parents=True, exist_ok=True)
    try:
      atomic_write_json(state, self.facts)
    except FileExistsError:
      pass

  def strip_path(self, r0: int) -> pathlib.Path:
    return self.dir / f"rows_{r0:07d}.npz"

  def done(self, starts: Sequence[int]) -> set[int]:
    return {r0 for r0 in starts if self.strip_path(r0).exists()}

  def write_strip(self, r0: int, **arrays: np.ndarray) -> None:
    atomic_write(self.strip_path(r0), lambda f: np.savez(f, **arrays))

  def read_strip(self, r0: int) -> dict[str, np.ndarray]:
    with np.load(self.strip_path(r0)) as z:
      return {k: z[k] for k in z.files}

  def wait_for(self, starts: Sequence[int], timeout_s: float, poll_s: float = 1.0) -> None:
    """Waits until every strip is written (the other processes' shares)."""
    deadline = time.monotonic() + timeout_s
    while True:
      missing = [r0 for r0 in starts if not self.strip_path(r0).exists()]
      if not missing:
        return
      if time.monotonic() > deadline:
        raise TimeoutError(f"{self.dir}: {len(missing)} band(s) of rows never came (first: "
                           f"rows from {missing[0]}); rerun to finish them")
      time.sleep(poll_s)

  def finish(self) -> None:
    shutil.rmtree(self.dir, ignore_errors=True)


def staging_dir(url: str) -> pathlib.Path:
  """The local folder an output URL is predicted into (the same one for a rerun on this host,
  so that an interrupted run resumes from its strips)."""
  key = hashlib.sha1(url.encode()).hexdigest()[:16]
  return pathlib.Path(tempfile.gettempdir()) / "spectralgpt_predict" / key


def upload(stage: pathlib.Path, url: str) -> list[str]:
  """Copies the finished files of `stage` beside `url` (storage.upload_tree), `url`'s own
  object last so that it appears only after its side files; removes `stage`. Returns the
  URLs of the uploaded files."""
  name = storage.basename(url)
  names = sorted(p.name for p in stage.iterdir() if p.is_file())
  storage.upload_tree(stage, storage.parent(url), last=(name,))
  shutil.rmtree(stage, ignore_errors=True)
  return [storage.join(storage.parent(url), n) for n in names]


def cog_profile(grid, count: int, dtype: str, nodata) -> dict[str, Any]:
  return dict(driver="GTiff", height=grid.height, width=grid.width, count=count, dtype=dtype,
              crs=grid.crs, transform=grid.transform, nodata=nodata, tiled=True,
              blockxsize=512, blockysize=512, compress="deflate", BIGTIFF="IF_SAFER")


def write_cog(path: pathlib.Path, work: pathlib.Path, profile: Mapping[str, Any],
              strips, resampling: str = "nearest",
              descriptions: Sequence[str] | None = None) -> None:
  """Strips ((r0, [count, n, W]) in row order) -> a tiled GeoTIFF in `work` -> COG at `path`
  (atomic rename; one strip in memory at a time)."""
  import rasterio  # pylint: disable=g-import-not-at-top
  from rasterio.shutil import copy as rio_copy  # pylint: disable=g-import-not-at-top
  from rasterio.windows import Window  # pylint: disable=g-import-not-at-top
  tiled = work / f"{path.name}.tiled.tif"
  with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
    with rasterio.open(tiled, "w", **profile) as dst:
      for r0, block in strips:
        dst.write(block, window=Window(0, r0, block.shape[-1], block.shape[-2]))
      for i, name in enumerate(descriptions or ()):
        dst.set_band_description(i + 1, str(name))
    tmp = work / f"{path.name}.cog.tif"
    rio_copy(tiled, tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=512,
             RESAMPLING=resampling.upper(), BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")
  os.replace(tmp, path)
  tiled.unlink()


def write_table(path: pathlib.Path, grid, cell_px: int, strips, names: Sequence[str]) -> None:
  """CSV, one row per scored cell: row, col, x, y (cell centre in the scene's CRS), top
  class and each class's score."""
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(["row", "col", "x", "y", "top_class", *names])
  t = grid.transform
  for r0, (scores, valid) in strips:
    for i in range(scores.shape[1]):
      for j in range(scores.shape[2]):
        if not valid[i, j]:
          continue
        x, y = t @ ((j + 0.5) * cell_px, (r0 + i + 0.5) * cell_px)
        s = scores[:, i, j]
        w.writerow([r0 + i, j, f"{x:.3f}", f"{y:.3f}", names[int(s.argmax())],
                    *[f"{v:.6f}" for v in s]])
  atomic_write_bytes(path, buf.getvalue().encode())
