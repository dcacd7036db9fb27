"""`DataSource`: the fixed, small API every named data source exposes.

Each module of `data_pipelines.datasets` builds one `SOURCE = DataSource(...)`; the registry
(`data_pipelines.datasets.get`) is the one place that maps a `data.source` / `--source` name
onto it. Callers ask the object, never the name: how it is read (`kind`), what its records
hold (`record_keys`), its classes, its own data-config block, its readers and ingest hooks.

Kinds (how the input pipeline reads a source):
  "shards"     TFRecord shards written by `ingest` (data_pipelines.pipeline streams them)
  "tfds"       a prepared array_record tfds dataset (random access)
  "records"    labelled examples read into memory by `records(cfg)` (small datasets)
  "dense"      whole images with masks read into memory by `records(cfg)`; training takes
               random crops, evaluation reads them whole (data_pipelines.dense)
  "generated"  cubes generated on the fly, no files
  "ingest"     readable only through `ingest` (then as "shards")
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import ml_collections

KINDS = ("shards", "tfds", "records", "dense", "generated", "ingest")

# A record's always-present keys (example_codec): the cube, its band names and the example id.
BASE_KEYS = ("cube", "bands", "key")


@dataclasses.dataclass(frozen=True)
class DataSource:
  """One named data source.

  name: the `data.source` / `ingest --source` name.
  kind: one of KINDS (how the input pipeline reads it).
  description: one line for --help and error messages.
  record_keys: the keys its records carry (cube [C, H, W] or [T, C, H, W], bands, key, and
    e.g. label, labels, mask, cube2, date).
  class_names: the label classes (index = label / mask value); () when the options decide
    (e.g. the BigEarthNet nomenclature) or when unlabelled.
  labelled: whether its records can carry labels (evaluation refuses unlabelled sources).
  licence: the data licence, recorded in the manifest of shards ingested from it ("" unknown).
  config: () -> the source's own block of `config.data` (`config.data.<name>.*`), or None.
  records: (data cfg) -> list of record dicts read into memory ("records", "dense").
  ingest_items: (inputs, options) -> (shard_writer.Items, manifest "labels" block).
  ingest_options: (CLI flags as a dict) -> the options `ingest_items` takes.
  fingerprint: (data cfg) -> [[file, bytes, mtime_ns], ...] of what it reads (cache keys);
    None when it cannot say (e.g. tfds).
  """

  name: str
  kind: str
  description: str
  record_keys: tuple[str, ...] = BASE_KEYS
  class_names: tuple[str, ...] = ()
  labelled: bool = True
  licence: str = ""
  config: Callable[[], ml_collections.ConfigDict] | None = None
  records: Callable[[Any], list[dict[str, Any]]] | None = None
  ingest_items: Callable[[Sequence[str], dict[str, Any]], tuple[list, dict[str, Any]]] | None = (
      None)
  ingest_options: Callable[[dict[str, Any]], dict[str, Any]] | None = None
  fingerprint: Callable[[Any], list | None] | None = None

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"data source {self.name!r}: kind {self.kind!r} not in {KINDS}")

  @property
  def ingestable(self) -> bool:
    return self.ingest_items is not None

  def files(self, cfg) -> list | None:
    """`fingerprint(cfg)`, else the files directly in `data.paths` when it is a folder."""
    if self.fingerprint is not None:
      return self.fingerprint(cfg)
    return folder_fingerprint(str(cfg.get("paths", "")))


def folder_fingerprint(folder: str) -> list | None:
  """[[relative path, bytes, mtime_ns], ...] of every file under `folder`, subfolders included
  (class folders, city folders), so a changed image changes the feature cache's key (None:
  not a folder)."""
  if not folder or not os.path.isdir(folder):
    return None
  out = []
  for parent, _, files in os.walk(folder):
    for name in files:
      st = os.stat(os.path.join(parent, name))
      out.append([os.path.relpath(os.path.join(parent, name), folder), st.st_size,
                  st.st_mtime_ns])
  return sorted(out)


def single_input(name: str, inputs: Sequence[str], what: str = "the dataset root") -> str:
  """The one input of a source that reads a dataset root (ValueError otherwise)."""
  if len(inputs) != 1:
    raise ValueError(f"--source {name} takes {what}, got {list(inputs)}")
  return str(inputs[0])


def label_block(kind: str | None, class_names: Sequence[str] = (), **extra) -> dict[str, Any]:
  """The manifest "labels" block: type, class_names and num_classes when there are classes."""
  out: dict[str, Any] = {"type": kind}
  if class_names:
    out["class_names"] = list(class_names)
  out.update(extra)
  if class_names:
    out["num_classes"] = len(class_names)
  return out
