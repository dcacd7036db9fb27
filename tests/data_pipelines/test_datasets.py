"""The source table (data_pipelines.datasets): every name gives an object with the fixed API,
an unknown name is refused listing the known ones, and the data config's per-source blocks
refuse misspelt fields by name."""

import os
import ml_collections
import pytest

from data_pipelines import config, datasets, dense, pipeline
from data_pipelines.datasets.core import KINDS, DataSource
from spectralgpt_jax.cli import ingest as ingest_cli


def _cli_flags(name):
  return vars(ingest_cli.build_parser().parse_args(
      ["--source", name, "--input", "x", "--out", "y", "--shards", "1"]))


@pytest.mark.parametrize("name", datasets.NAMES)
def test_every_name_gives_the_fixed_api(name):
  src = datasets.get(name)
  assert isinstance(src, DataSource) and src.name == name and src.kind in KINDS
  assert "cube" in src.record_keys and src.description
  assert all(isinstance(c, str) for c in src.class_names)
  if src.kind in ("records", "dense"):
    assert callable(src.records)
  if src.kind == "dense":
    assert "mask" in src.record_keys and dense.class_names(name) == src.class_names
  if src.config is not None:
    block = config.default_data_config()[name]
    assert sorted(block.keys()) == sorted(src.config().keys()) and block.keys()
  if src.ingestable:   # every flag the source reads exists on the CLI, with its default
    assert name in ingest_cli.build_parser()._option_string_actions["--source"].choices
    assert isinstance(src.ingest_options(_cli_flags(name)), dict)
  assert datasets.get(name) is src   # one object per name


def test_unknown_name_lists_the_known_ones():
  with pytest.raises(ValueError, match=r"unknown data source 'oscdd'; known: tfrecord, .*oscd"):
    datasets.get("oscdd")
  assert set(datasets.names(kind="dense")) == {"oscd", "sen1floods11_seg", "segmunich"}
  assert "synthetic" not in datasets.names(ingestable=True)


def test_misspelt_data_fields_are_errors_naming_the_field():
  c = config.default_data_config()
  with pytest.raises(AttributeError, match="citis"):
    c.oscd.citis = "paris"
  with pytest.raises(AttributeError, match="tfds_name"):
    c.tfds_name = "eurosat/all"           # the flat layout's field: now data.tfds.name
  with pytest.raises(KeyError, match="channel"):
    config.set_fields(c, segmunich={"channel": "by_name"})
  c.oscd.cities = "paris"                 # known fields still set
  # A copy that lost the lock (to_dict round trip) is checked when the pipeline reads it.
  loose = ml_collections.ConfigDict(c.to_dict())
  loose.source = "synthetic"
  loose.oscd.citis = "paris"
  with pytest.raises(ValueError, match=r"unknown data config field 'data\.oscd\.citis'"):
    pipeline.make_iterator(loose, process_index=0, process_count=1)
  loose = ml_collections.ConfigDict(c.to_dict())
  loose.update(source="oscd", cities="paris")
  with pytest.raises(ValueError, match=r"'data\.cities'"):
    dense.dense_records(loose)
  loose = ml_collections.ConfigDict(c.to_dict())
  loose.source = "eurosatt"
  with pytest.raises(ValueError, match="unknown data source 'eurosatt'"):
    pipeline.make_iterator(loose, process_index=0, process_count=1)


def test_folder_fingerprint_sees_files_in_subfolders(tmp_path):
  from data_pipelines.datasets.core import folder_fingerprint
  (tmp_path / "Forest").mkdir()
  (tmp_path / "Forest" / "Forest_1.tif").write_bytes(b"ab")
  before = folder_fingerprint(str(tmp_path))
  assert [row[:2] for row in before] == [[os.path.join("Forest", "Forest_1.tif"), 2]]
  (tmp_path / "Forest" / "Forest_1.tif").write_bytes(b"abc")   # a changed image
  assert folder_fingerprint(str(tmp_path)) != before
