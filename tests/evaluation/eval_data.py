"""The data block of the evaluation tests: the ingested BigEarthNet shards, multi-label, 32 px.

A module of its own (not conftest) so test modules import it by a name no other folder uses."""

import ml_collections

from data_pipelines.config import default_data_config


def data_config(path: str, batch_size: int = 2) -> ml_collections.ConfigDict:
  c = default_data_config()
  c.paths, c.label_type, c.num_classes = path, "multi", 19
  c.image_size, c.batch_size, c.normalization = 32, batch_size, "minmax"
  return c
