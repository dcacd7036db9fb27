"""tfds datasets `eurosat/all` and `bigearthnet/all` as records, read without TensorFlow.

Only datasets already prepared in **array_record** format can be read TF-free (through
`tfds.data_source`). Preparing them is another matter: tfds' EuroSAT builder uses
`tf.io.gfile` and BigEarthNet is an Apache Beam builder, so preparation needs TensorFlow
(and Beam) on some machine; or skip tfds and ingest the raw GeoTIFFs directly (EuroSAT-MS tifs
with `--source geotiff --bands eurosat`, BigEarthNet folders with `--source bigearthnet`).

Band facts: `eurosat/all` holds the 13 EuroSAT-MS planes as `sentinel2` (64, 64, 13) in the
GeoTIFF plane order (B8A last; tfds does not name them). `bigearthnet/all` holds the 12 L2A
bands as separate features at native resolution; they are resampled here to the 10 m grid
with pixel-is-area bilinear interpolation, which equals GDAL's result on aligned grids (see
tests/data_pipelines/test_bigearthnet_reader.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_pipelines import labels as labels_lib
from data_pipelines import resample
from data_pipelines import schema

SUPPORTED = ("eurosat/all", "bigearthnet/all")


def _str(v: Any) -> str:
  return v.decode() if isinstance(v, bytes) else str(v)


def _base(name: str) -> str:
  base = name.split(":")[0]
  parts = base.split("/")
  key = "/".join(parts[:2])
  if key not in SUPPORTED:
    raise ValueError(f"tfds dataset {name!r} not supported; choose from {SUPPORTED}")
  return key


def eurosat_record(ex: dict[str, Any]) -> dict[str, Any]:
  """tfds eurosat/all example -> record (13 planes, EuroSAT order, float32 DN)."""
  cube = np.ascontiguousarray(np.asarray(ex["sentinel2"], np.float32).transpose(2, 0, 1))
  label = int(ex["label"])
  return {"cube": cube, "bands": list(schema.EUROSAT_BANDS), "label": label,
          "label_names": [labels_lib.EUROSAT_CLASSES[label]], "key": _str(ex.get("filename", ""))}


def bigearthnet_record(ex: dict[str, Any], *, class_names: tuple[str, ...] | None = None,
                       nomenclature: str = "bigearthnet19", size: int = 120,
                       method: str = "bilinear") -> dict[str, Any]:
  """tfds bigearthnet/all example -> record (12 bands on the 10 m grid, SpectralGPT order)."""
  cube = np.empty((len(schema.BIGEARTHNET_BANDS), size, size), np.float32)
  for i, band in enumerate(schema.SPECTRALGPT_BANDS):
    cube[i] = resample.resize(np.asarray(ex[band], np.float32), (size, size), method,
                              antialias=False)
  class_names = class_names or TFDS_BIGEARTHNET_CLASSES
  names = [class_names[int(i)] for i in np.asarray(ex.get("labels", []), np.int64).ravel()]
  classes = labels_lib.NOMENCLATURES[nomenclature]
  meta = ex.get("metadata", {}) or {}
  coords = meta.get("coordinates", {}) or {}
  rec: dict[str, Any] = {
      "cube": cube, "bands": list(schema.SPECTRALGPT_BANDS),
      "labels": labels_lib.bigearthnet_indices(names, nomenclature),
      "num_classes": len(classes), "label_names": names,
      "key": _str(ex.get("filename", "")),
      "product_id": _str(meta.get("tile_source", "")).removesuffix(".SAFE"),
      "date": _str(meta.get("acquisition_date", "")).replace(" ", "T"),
      "crs": _str(meta.get("projection", "")),
  }
  if coords:
    rec["bounds"] = [float(coords["ulx"]), float(coords["lry"]), float(coords["lrx"]),
                     float(coords["uly"])]
  rec["radio_add_offset"] = schema.radio_add_offset(rec["product_id"], None)
  return rec


def tfds_record(name: str, ex: dict[str, Any], **kwargs) -> dict[str, Any]:
  """Dispatches on the dataset name ("eurosat/all" or "bigearthnet/all")."""
  return eurosat_record(ex) if _base(name) == "eurosat/all" else bigearthnet_record(ex, **kwargs)


def open_source(name: str, split: str = "train", data_dir: str | None = None):
  """The random-access tfds data source (array_record), TF-free; usable by grain directly."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  _base(name)
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:
    raise RuntimeError(
        f"cannot open tfds dataset {name!r} split {split!r} as an array_record data source "
        f"({e}). It must be prepared first with file_format='array_record'; preparing "
        "eurosat/bigearthnet with tfds needs TensorFlow (and Apache Beam for bigearthnet). "
        "Alternatively ingest the raw GeoTIFFs with --source geotiff / bigearthnet.") from e


# tfds' bigearthnet ClassLabel lists the 43 CORINE names in alphabetical order, so its label
# indices differ from the BigEarthNet nomenclature order (labels.BIGEARTHNET43).
TFDS_BIGEARTHNET_CLASSES = tuple(sorted(labels_lib.BIGEARTHNET43))


def class_names_of(name: str, data_dir: str | None = None) -> tuple[str, ...]:
  """Names for the tfds dataset's label indices (from the builder's features)."""
  if _base(name) == "eurosat/all":
    return labels_lib.EUROSAT_CLASSES
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    names = tuple(tfds.builder(name, data_dir=data_dir).info.features["labels"].feature.names)
  except Exception:  # pylint: disable=broad-except  # metadata unavailable
    names = ()
  return names if len(names) == 43 else TFDS_BIGEARTHNET_CLASSES
