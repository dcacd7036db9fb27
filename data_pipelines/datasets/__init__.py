"""The named data sources: `get(name)` is the one place a source name is decided.

Each name maps onto a module of this package that exposes `SOURCE` (a `core.DataSource`);
modules are imported on first use. `data.source` in a data config, `ingest --source` and
the evaluation readers all go through `get`.
"""

from __future__ import annotations

import importlib

from data_pipelines.datasets.core import DataSource

# The sources, each the module of this package of the same name.
NAMES: tuple[str, ...] = ("tfrecord", "tfds", "synthetic", "geotiff", "geotiff_series",
                          "bigearthnet", "eurosat", "sen1floods11_tiles", "sen1floods11_seg",
                          "oscd", "segmunich", "stac")


def get(name: str) -> DataSource:
  """The source called `name` (ValueError listing the known names otherwise)."""
  if name not in NAMES:
    raise ValueError(f"unknown data source {name!r}; known: {', '.join(NAMES)}")
  module = importlib.import_module(f"data_pipelines.datasets.{name}")
  return module.SOURCE


def names(*, kind: str | None = None, ingestable: bool | None = None) -> tuple[str, ...]:
  """Registered names, optionally only those of one kind / that `ingest` accepts."""
  out = []
  for name in NAMES:
    src = get(name)
    if kind is not None and src.kind != kind:
      continue
    if ingestable is not None and src.ingestable != ingestable:
      continue
    out.append(name)
  return tuple(out)
