"""Shards into an object store (gs://, s3://, ...), which has no rename: written in a local
staging folder by `shard_writer.write_shards`, then uploaded with the manifest last."""

from __future__ import annotations

import json
import tempfile
from typing import Any, Sequence

from data_pipelines import record_formats, shard_writer, storage
from data_pipelines.shard_writer import Item


def write_to_url(items: Sequence[Item], url: str, *, overwrite: bool, **kwargs
                 ) -> dict[str, Any]:
  """write_shards into an object store, which has no rename: the shards are written in a local
  staging folder ($TMPDIR), then uploaded one object per PUT with manifest.json last, so a
  reader that finds the manifest finds every shard it lists. An old manifest is deleted
  before anything it describes is replaced."""
  manifest_url = storage.join(url, shard_writer.MANIFEST)
  if storage.exists(manifest_url):
    old = json.loads(storage.read_text(manifest_url))
    if not overwrite:
      plan = shard_writer.ingest_plan(items, kwargs["num_shards"], kwargs["seed"],
                                      kwargs["prefix"], kwargs["record_format"])
      if old.get("plan") == plan:
        return old
      raise FileExistsError(f"{url} already holds a different dataset "
                            f"({shard_writer.MANIFEST}); choose another --out or pass overwrite")
    storage.remove(manifest_url)
  with tempfile.TemporaryDirectory(prefix="spectralgpt-ingest-") as staging:
    manifest = shard_writer.write_shards(items, staging, overwrite=True, **kwargs)
    ext = record_formats.extension(kwargs["record_format"])
    for stale in storage.glob(storage.join(url, "*" + ext)):
      if storage.basename(stale) not in {s["file"] for s in manifest["shards"]}:
        storage.remove(stale)
    storage.upload_tree(staging, url, last=(shard_writer.MANIFEST,))
  return manifest
