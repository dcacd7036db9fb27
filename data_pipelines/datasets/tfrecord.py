"""`tfrecord`: TFRecord shards written by `ingest` (the training and evaluation default).

`data.paths`: a shard directory holding manifest.json, a glob, or a comma list of shard files
(gs:// works); `data.split_file` keeps the ids it lists. The records hold what was ingested.
"""

from __future__ import annotations

import os

from data_pipelines.datasets.core import BASE_KEYS, DataSource


def _shard_files(cfg) -> list:
  """[[shard, bytes, mtime_ns], ...]; remote shards (gs://) by name only."""
  from data_pipelines import sources  # pylint: disable=g-import-not-at-top  # etils, on use
  files, _ = sources.list_shards(cfg.paths)
  out = []
  for f in files:
    st = os.stat(f) if os.path.exists(f) else None
    out.append([f, st.st_size if st else None, st.st_mtime_ns if st else None])
  return out


SOURCE = DataSource(
    name="tfrecord", kind="shards",
    description="TFRecord shards written by `ingest` (data.paths: shard dir, glob or list)",
    record_keys=BASE_KEYS + ("label", "labels", "num_classes", "mask", "cube2", "date",
                             "dates", "crs", "bounds", "source"),
    fingerprint=_shard_files)
