"""Ingestion drivers: turn GeoTIFFs, GeoTIFF time series, BigEarthNet folders, tfds datasets,
EuroSAT-MS or the dense datasets (OSCD, Sen1Floods11 chips, SegMunich: records with mask,
OSCD with cube2 / date2) into shards.

Each `*_items` function lists the inputs as `shard_writer.Item`s (stable key + lazy loader
producing a record dict); each source of `data_pipelines.datasets` says which one it uses
(its `ingest_items` hook; `list_items` asks it) and `ingest` writes them with
`shard_writer.write_shards`, in processes with `workers` > 1 (`beam_ingest.ingest_beam` writes
the same items as an Apache Beam pipeline). The CLI (`python -m spectralgpt_jax ingest`) is a
thin argparse layer over both.
"""

from __future__ import annotations

import functools
import glob
import os
import pathlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from data_pipelines import bigearthnet
from data_pipelines import datasets
from data_pipelines import geotiff
from data_pipelines import labels as labels_lib
from data_pipelines import schema
from data_pipelines import shard_writer
from data_pipelines import splits
from data_pipelines import tfds_source
from data_pipelines.checksums import verify_sha256sums
from data_pipelines.errors import BadInputError
from data_pipelines.shard_writer import Item

TIFF_SUFFIXES = (".tif", ".tiff")


def _finish_cube(rec: dict[str, Any], harmonize: bool, store_dtype: str | None) -> dict[str, Any]:
  """Optionally removes the baseline-04.00 DN offset and casts the cube (and cube2) for
  storage."""
  offset = int(rec.get("radio_add_offset", 0))
  for k in ("cube", "cube2"):
    if k not in rec:
      continue
    if harmonize and offset:
      rec[k] = schema.harmonize_dn(rec[k], offset)
    if store_dtype == "uint16" and rec[k].dtype != np.uint16:
      rec[k] = np.clip(np.rint(rec[k]), 0, 65535).astype(np.uint16)
    elif store_dtype == "float32":
      rec[k] = rec[k].astype(np.float32)
  if harmonize and offset:
    rec["radio_add_offset"] = 0
  return rec


# ---------------------------------------------------------------- BigEarthNet folders

def _load_ben(folder: str, resampling: str, nomenclature: str, harmonize: bool,
              store_dtype: str) -> dict[str, Any]:
  cube, meta = bigearthnet.read_bigearthnet_patch(folder, resampling=resampling)
  try:
    idx = labels_lib.bigearthnet_indices(meta["labels"], nomenclature)
  except KeyError as e:
    raise BadInputError(folder, "labels", str(e)) from e
  rec = {"cube": cube, "bands": meta["bands"], "labels": idx,
         "num_classes": len(labels_lib.NOMENCLATURES[nomenclature]),
         "label_names": meta["labels"], "key": meta["patch_id"], "product_id": meta["product_id"],
         "crs": meta["crs"], "bounds": meta["bounds"], "date": meta["date"],
         "source": meta["source"], "radio_add_offset": meta["radio_add_offset"]}
  return _finish_cube(rec, harmonize, store_dtype)


def bigearthnet_items(roots: Sequence[str], *, resampling: str = "bilinear",
                      nomenclature: str = "bigearthnet19", harmonize: bool = True,
                      store_dtype: str = "uint16", verify_sha256: bool = False) -> list[Item]:
  """One item per BigEarthNet patch folder found under `roots` (sorted)."""
  items = []
  for root in roots:
    if verify_sha256:
      bigearthnet.verify_sha256sums(root)
    for folder in bigearthnet.list_bigearthnet_patches(root):
      items.append(Item(str(folder), functools.partial(
          _load_ben, str(folder), resampling, nomenclature, harmonize, store_dtype)))
  return items


# ---------------------------------------------------------------- multi-band GeoTIFFs

def expand_paths(inputs: Sequence[str], suffixes=TIFF_SUFFIXES) -> list[str]:
  """Files, directories (recursive) and glob patterns -> sorted unique file paths."""
  out: set[str] = set()
  for spec in inputs:
    p = pathlib.Path(spec)
    if p.is_dir():
      out.update(str(f) for f in p.rglob("*") if f.suffix.lower() in suffixes)
    elif any(c in spec for c in "*?["):
      out.update(glob.glob(spec, recursive=True))
    else:
      out.add(spec)   # a missing file becomes a BadInputError at load time
  return sorted(out)


def _load_geotiff(path: str, bands, expect_shape, expect_crs, label: int | None,
                  class_names, harmonize: bool, store_dtype: str | None,
                  sensor: str | None = None) -> dict[str, Any]:
  cube, meta = geotiff.read_geotiff(path, bands=bands, expect_shape=expect_shape,
                                    expect_crs=expect_crs, sensor=sensor)
  rec: dict[str, Any] = {"cube": cube, "bands": meta["bands"], "key": path,
                         "source": path, "crs": meta["crs"], "bounds": meta["bounds"]}
  if meta["date"]:
    rec["date"] = meta["date"]
  if label is not None:
    rec["label"], rec["label_names"] = label, [class_names[label]]
  return _finish_cube(rec, harmonize, store_dtype)


def geotiff_items(inputs: Sequence[str], *, bands: str | Sequence[str] | None = None,
                  label_from_dir: bool = False, classes: Sequence[str] | None = None,
                  expect_shape: tuple[int, int] | None = None, expect_crs: str | None = None,
                  harmonize: bool = True, store_dtype: str | None = None,
                  sensor: str | None = None) -> tuple[list[Item], tuple[str, ...] | None]:
  """Items for multi-band GeoTIFFs; labels optionally from the parent folder name (EuroSAT);
  `sensor` (data_pipelines.sensors) names the bands' sensor (default Sentinel-2)."""
  paths = expand_paths(inputs)
  class_names = None
  if label_from_dir:
    class_names = tuple(classes) if classes else tuple(sorted({pathlib.Path(p).parent.name
                                                               for p in paths}))
  items = []
  for path in paths:
    label = None
    if class_names is not None:
      parent = pathlib.Path(path).parent.name
      if parent not in class_names:
        raise BadInputError(path, "label", f"parent folder {parent!r} not in classes "
                            f"{list(class_names)}")
      label = class_names.index(parent)
    items.append(Item(path, functools.partial(_load_geotiff, path, bands, expect_shape,
                                              expect_crs, label, class_names, harmonize,
                                              store_dtype, sensor)))
  return items, class_names


# ---------------------------------------------------------------- GeoTIFF time series

_DATE = re.compile(r"(\d{4})[-_:]?(\d{2})[-_:]?(\d{2})")


def _tifs(folder: pathlib.Path) -> list[pathlib.Path]:
  return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in TIFF_SUFFIXES)


def series_folders(inputs: Sequence[str]) -> list[str]:
  """Example folders (sorted): every folder under the inputs (dirs or globs) holding tifs."""
  out: set[str] = set()
  for spec in inputs:
    for hit in (glob.glob(spec) if any(c in spec for c in "*?[") else [spec]):
      p = pathlib.Path(hit)
      if not p.is_dir():
        raise BadInputError(p, "file", "not a folder of per-date GeoTIFFs (geotiff_series)")
      out.update(str(d) for d in [p, *p.rglob("*")] if d.is_dir() and _tifs(d))
  return sorted(out)


def _iso_date(path: pathlib.Path, tag: str) -> str:
  """'YYYY-MM-DD' from TIFFTAG_DATETIME ('YYYY:MM:DD hh:mm:ss') or else the file name."""
  m = _DATE.search(tag or "") or _DATE.search(path.stem)
  if not m:
    raise BadInputError(path, "date", "no date in TIFFTAG_DATETIME nor in the file name "
                        "(e.g. 2021-06-01.tif)")
  return "-".join(m.groups())


def _load_series(folder: str, bands, expect_shape, expect_crs, num_dates: int | None,
                 harmonize: bool, store_dtype: str | None) -> dict[str, Any]:
  """One example folder (one multi-band tif per date) -> record with cube [T, C, H, W]."""
  files = _tifs(pathlib.Path(folder))
  if num_dates and len(files) != num_dates:
    raise BadInputError(folder, "dates", f"{len(files)} GeoTIFFs, expected {num_dates} dates")
  dated = []
  for f in files:
    cube, meta = geotiff.read_geotiff(f, bands=bands, expect_shape=expect_shape,
                                      expect_crs=expect_crs)
    dated.append((_iso_date(f, meta["date"]), f, cube, meta))
  dated.sort(key=lambda d: (d[0], d[1].name))
  _, ref_file, ref_cube, ref_meta = dated[0]
  for _, f, cube, meta in dated[1:]:
    for field, got, want in (("bands", meta["bands"], ref_meta["bands"]),
                             ("shape", cube.shape, ref_cube.shape),
                             ("dtype", cube.dtype, ref_cube.dtype),
                             ("crs", meta["crs"], ref_meta["crs"]),
                             ("bounds", meta["bounds"], ref_meta["bounds"])):
      if got != want:
        raise BadInputError(f, field, f"{got} differs from {want} in {ref_file.name}")
  dates = [d[0] for d in dated]
  if len(set(dates)) != len(dates):
    raise BadInputError(folder, "date", f"repeated dates {dates}")
  rec: dict[str, Any] = {"cube": np.stack([d[2] for d in dated]),
                         "bands": ref_meta["bands"], "key": folder, "source": folder,
                         "crs": ref_meta["crs"], "bounds": ref_meta["bounds"], "dates": dates,
                         "date": dates[0]}
  return _finish_cube(rec, harmonize, store_dtype)


def geotiff_series_items(inputs: Sequence[str], *, bands: str | Sequence[str] | None = None,
                         expect_shape: tuple[int, int] | None = None,
                         expect_crs: str | None = None, num_dates: int | None = None,
                         harmonize: bool = True, store_dtype: str | None = None) -> list[Item]:
  """One item per example folder: one multi-band GeoTIFF per date, ordered by date.

  Dates come from each file's TIFFTAG_DATETIME, else from its name (2021-06-01.tif,
  S2_20210601.tif); all dates of an example must share bands, shape, dtype, CRS and bounds.
  """
  return [Item(folder, functools.partial(_load_series, folder, bands, expect_shape, expect_crs,
                                         num_dates, harmonize, store_dtype))
          for folder in series_folders(inputs)]


# ---------------------------------------------------------------- tfds

def _load_tfds(src, name: str, split: str, index: int, nomenclature: str,
               class_names: tuple[str, ...], harmonize: bool, store_dtype: str | None):
  kwargs = {} if name.startswith("eurosat") else {"class_names": class_names,
                                                  "nomenclature": nomenclature}
  rec = tfds_source.tfds_record(name, src[index], **kwargs)
  rec["source"] = f"tfds:{name}/{split}[{index}]"
  return _finish_cube(rec, harmonize, store_dtype)


def tfds_items(name: str, *, split: str = "train", data_dir: str | None = None,
               nomenclature: str = "bigearthnet19", harmonize: bool = True,
               store_dtype: str | None = None) -> list[Item]:
  """One item per example of a prepared (array_record) tfds split."""
  src = tfds_source.open_source(name, split, data_dir)
  class_names = tfds_source.class_names_of(name, data_dir)
  return [Item(f"tfds:{name}/{split}[{i}]", functools.partial(
      _load_tfds, src, name, split, i, nomenclature, class_names, harmonize, store_dtype))
          for i in range(len(src))]


# ---------------------------------------------------------------- dense datasets

def _load_dense(load: Callable[[str], dict[str, Any]], key: str,
                store_dtype: str | None) -> dict[str, Any]:
  return _finish_cube(load(key), False, store_dtype)


def dense_items(name: str, root: str, keys: Sequence[str], load: Callable[[str], dict[str, Any]],
                *, store_dtype: str | None = None, verify_sha256: bool = False) -> list[Item]:
  """One item per image key of a dense dataset (`load(key)`: a picklable reader returning a
  record with "mask", int32 with -1 ignored, and for change detection "cube2" / "date2")."""
  if verify_sha256:
    verify_sha256sums(root)
  return [Item(f"{name}:{root}:{k}", functools.partial(_load_dense, load, k, store_dtype))
          for k in keys]


# ---------------------------------------------------------------- driver

def _in_split(items: list[Item], split_file: str) -> list[Item]:
  """The items whose key's example id `split_file` lists (BadInputError naming the file and
  the first ids no item has)."""
  keep = splits.read_split_file(split_file)
  kept = [i for i in items if splits.example_id(i.key) in keep]
  missing = sorted(keep - {splits.example_id(i.key) for i in kept})
  if missing:
    raise BadInputError(split_file, "id", f"{len(missing)} listed ids match no input, e.g. "
                        f"{missing[:3]}")
  return kept


def list_items(source: str, inputs: Sequence[str], *, split_file: str = "",
               **options: Any) -> tuple[list[Item], dict[str, Any]]:
  """The items of `source` (a name of `data_pipelines.datasets`) for `inputs`, and the
  manifest fields that describe them (source, inputs, labels, options, licence).
  `split_file` (data_pipelines.splits ids), if given, keeps only the inputs it lists; an id it
  lists that no input has is an error naming it."""
  src = datasets.get(source)
  if not src.ingestable:
    raise ValueError(f"source {source!r} cannot be ingested; choose from "
                     f"{', '.join(datasets.names(ingestable=True))}")
  items, label_info = src.ingest_items(list(inputs), dict(options))
  if split_file:
    items = _in_split(items, split_file)
    options = {**options, "split_file": split_file}
  if not items:
    raise BadInputError(", ".join(inputs), "file", f"no {source} inputs found")
  extra = {"source_type": source, "sources": [str(i) for i in inputs],
           "num_source_items": len(items), "labels": label_info,
           "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}}
  if src.licence:
    extra["licence"] = src.licence
  if options.get("sensor"):   # the manifest's band_wavelengths come from this sensor
    extra["sensor"] = options["sensor"]
  return items, extra


def ingest(source: str, inputs: Sequence[str], out: str | os.PathLike, *, num_shards: int,
           seed: int = 0, skip_bad: bool = False, overwrite: bool = False,
           split_file: str = "", workers: int | None = None, record_format: str = "tfrecord",
           **options: Any) -> dict[str, Any]:
  """Lists the inputs of `source` (`list_items`) and writes shards + manifest to `out`,
  `workers` shards at once in processes (None: all cores, small ingests in this process:
  `shard_writer.default_workers`; the bytes do not depend on it); returns the manifest.

  options: what the source's ingest hook takes (e.g. `bigearthnet_items`, `geotiff_items`,
  `geotiff_series_items`, `tfds_items`: for tfds, `inputs` is [dataset name]; dense sources
  and eurosat: `inputs` is [root]). record_format: "tfrecord" or "array_record".
  """
  items, extra = list_items(source, inputs, split_file=split_file, **options)
  return shard_writer.write_shards(items, out, num_shards=num_shards, seed=seed,
                                   skip_bad=skip_bad, overwrite=overwrite, extra=extra,
                                   workers=workers, record_format=record_format)
