"""Record <-> `tf.train.Example` bytes, without TensorFlow (tfds ships the generated protos).

A record is a plain dict. Required: "cube" ([C, H, W] or [T, C, H, W] array, any numeric
dtype) and "bands" (C names). Optional:

  label: int                    single-label class index
  labels: list[int]             multi-label class indices; with num_classes: int
  label_names: list[str]        human names of this record's labels
  mask: [H, W] int array        segmentation mask
  cube2: array like cube        second date (change detection)
  key, product_id, crs, date, date2, source: str     provenance
  item_id: str                  the STAC item a tile was read from
  dates: list[str]              per-time-step dates of a time series
  bounds: 4 floats              (left, bottom, right, top) in `crs` units
  radio_add_offset: int         DN offset still present in the stored values (0 or -1000)

Feature layout inside the Example: arrays are stored as raw little-endian bytes with
"<name>/dtype" (numpy dtype string, e.g. "<u2") and "<name>/shape" (int64 list).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorflow_datasets.proto import tf_example_pb2

ARRAY_FIELDS = ("cube", "cube2", "mask")
STR_FIELDS = ("key", "product_id", "crs", "date", "date2", "source", "item_id")
STR_LIST_FIELDS = ("bands", "label_names", "dates")
INT_FIELDS = ("label", "num_classes", "radio_add_offset")
INT_LIST_FIELDS = ("labels",)
FLOAT_LIST_FIELDS = ("bounds",)
KNOWN_FIELDS = frozenset(ARRAY_FIELDS + STR_FIELDS + STR_LIST_FIELDS + INT_FIELDS
                         + INT_LIST_FIELDS + FLOAT_LIST_FIELDS)


class RecordFormatError(ValueError):
  """A record (dict or serialized Example) violates the layout; names the field."""

  def __init__(self, field: str, reason: str):
    self.field, self.reason = field, reason
    super().__init__(f"record field {field!r}: {reason}")

  def __reduce__(self):  # raised in an ingest worker process, re-raised in the parent
    return type(self), (self.field, self.reason)


def _little_endian(a: np.ndarray) -> np.ndarray:
  a = np.ascontiguousarray(a)
  return a if a.dtype.byteorder in "<|=" else a.astype(a.dtype.newbyteorder("<"))


def validate_record(rec: Mapping[str, Any]) -> None:
  """Structural checks before encoding (shapes, band count, dtypes, no unknown fields)."""
  unknown = set(rec) - KNOWN_FIELDS
  if unknown:
    raise RecordFormatError(sorted(unknown)[0], f"unknown field (known: {sorted(KNOWN_FIELDS)})")
  if "cube" not in rec or "bands" not in rec:
    raise RecordFormatError("cube" if "cube" not in rec else "bands", "required field missing")
  cube = np.asarray(rec["cube"])
  if cube.ndim not in (3, 4):
    raise RecordFormatError("cube", f"expected [C,H,W] or [T,C,H,W], got shape {cube.shape}")
  if cube.shape[-3] != len(rec["bands"]):
    raise RecordFormatError("bands", f"{len(rec['bands'])} names for {cube.shape[-3]} planes")
  if cube.dtype.kind not in "uif":
    raise RecordFormatError("cube", f"unsupported dtype {cube.dtype}")
  if "cube2" in rec and np.asarray(rec["cube2"]).shape != cube.shape:
    raise RecordFormatError("cube2", f"shape {np.shape(rec['cube2'])} != cube {cube.shape}")
  if "mask" in rec:
    m = np.asarray(rec["mask"])
    if m.shape != cube.shape[-2:] or m.dtype.kind not in "ui":
      raise RecordFormatError("mask", f"expected integer [H,W]={cube.shape[-2:]}, got "
                              f"{m.dtype} {m.shape}")
  if "labels" in rec and "num_classes" not in rec:
    raise RecordFormatError("num_classes", "required with multi-label 'labels'")
  if "bounds" in rec and len(rec["bounds"]) != 4:
    raise RecordFormatError("bounds", "expected (left, bottom, right, top)")


def encode_record(rec: Mapping[str, Any]) -> bytes:
  """Serializes a record dict to `tf.train.Example` bytes."""
  validate_record(rec)
  ex = tf_example_pb2.Example()
  feat = ex.features.feature
  for name in ARRAY_FIELDS:
    if name in rec:
      a = _little_endian(np.asarray(rec[name]))
      feat[name].bytes_list.value.append(a.tobytes())
      feat[f"{name}/dtype"].bytes_list.value.append(a.dtype.str.encode())
      feat[f"{name}/shape"].int64_list.value.extend(a.shape)
  for name in STR_FIELDS:
    if rec.get(name) is not None:
      feat[name].bytes_list.value.append(str(rec[name]).encode())
  for name in STR_LIST_FIELDS:
    if name in rec:
      feat[name].bytes_list.value.extend(str(s).encode() for s in rec[name])
  for name in INT_FIELDS:
    if rec.get(name) is not None:
      feat[name].int64_list.value.append(int(rec[name]))
  for name in INT_LIST_FIELDS:
    if name in rec:
      feat[name].int64_list.value.extend(int(v) for v in rec[name])
  for name in FLOAT_LIST_FIELDS:
    if name in rec:
      feat[name].float_list.value.extend(float(v) for v in rec[name])
  return ex.SerializeToString(deterministic=True)


def _array(feat, name: str) -> np.ndarray:
  try:
    raw = feat[name].bytes_list.value[0]
    dtype = np.dtype(feat[f"{name}/dtype"].bytes_list.value[0].decode())
    shape = tuple(feat[f"{name}/shape"].int64_list.value)
  except (IndexError, KeyError, TypeError) as e:
    raise RecordFormatError(name, f"incomplete array feature ({e})") from e
  if len(raw) != int(np.prod(shape)) * dtype.itemsize:
    raise RecordFormatError(name, f"{len(raw)} bytes do not hold {dtype} {shape}")
  return np.frombuffer(raw, dtype).reshape(shape)


def decode_record(data: bytes, fields: frozenset[str] | None = None) -> dict[str, Any]:
  """Parses `tf.train.Example` bytes back into a record dict (arrays are read-only views).

  fields: decode only these (default: all present).
  """
  ex = tf_example_pb2.Example.FromString(data)
  feat = ex.features.feature
  present = set(feat.keys())
  want = present if fields is None else present & set(fields)
  rec: dict[str, Any] = {}
  for name in ARRAY_FIELDS:
    if name in want:
      rec[name] = _array(feat, name)
  for name in STR_FIELDS:
    if name in want:
      rec[name] = feat[name].bytes_list.value[0].decode()
  for name in STR_LIST_FIELDS:
    if name in want:
      rec[name] = [v.decode() for v in feat[name].bytes_list.value]
  for name in INT_FIELDS:
    if name in want:
      rec[name] = int(feat[name].int64_list.value[0])
  for name in INT_LIST_FIELDS:
    if name in want:
      rec[name] = list(feat[name].int64_list.value)
  for name in FLOAT_LIST_FIELDS:
    if name in want:
      rec[name] = list(feat[name].float_list.value)
  if "cube" not in rec and (fields is None or "cube" in fields):
    raise RecordFormatError("cube", "missing from Example")
  return rec
