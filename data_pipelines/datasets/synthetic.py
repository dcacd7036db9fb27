"""`synthetic`: smooth random cubes generated on the fly (data_pipelines.synthetic); no files,
no labels. For smoke runs and benchmarks of the training step."""

from __future__ import annotations

from data_pipelines.datasets.core import DataSource

SOURCE = DataSource(
    name="synthetic", kind="generated",
    description="generated smooth random cubes, no files, no labels",
    record_keys=("cube",), labelled=False, fingerprint=lambda cfg: None)
