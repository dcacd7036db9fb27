"""tfds eurosat/all and bigearthnet/all (mocked with tfds.testing.mock_data): ingest and read."""

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from data_pipelines import config, example_codec, ingest, labels, pipeline  # noqa: E402
from data_pipelines import schema, tfrecord  # noqa: E402
from data_pipelines import tfds_source  # noqa: E402


def _records(out):
  recs = []
  for f in sorted(out.glob("*.tfrecord")):
    recs += [example_codec.decode_record(d) for _, d in tfrecord.iter_records(f)]
  return {r["source"]: r for r in recs}


def test_eurosat_all(tmp_path):
  assert tuple(tfds.builder("eurosat/all").info.features["label"].names) == labels.EUROSAT_CLASSES
  with tfds.testing.mock_data(num_examples=6):
    m = ingest.ingest("tfds", ["eurosat/all"], tmp_path, num_shards=2)
    src = tfds.data_source("eurosat/all", split="train")
    recs = _records(tmp_path)
    assert m["num_records"] == 6 and m["bands"] == list(schema.EUROSAT_BANDS)
    assert m["labels"]["type"] == "single" and m["labels"]["num_classes"] == 10
    for i in range(6):
      r = recs[f"tfds:eurosat/all/train[{i}]"]
      np.testing.assert_array_equal(r["cube"], src[i]["sentinel2"].transpose(2, 0, 1))
      assert r["label"] == int(src[i]["label"])


def test_bigearthnet_all(tmp_path):
  with tfds.testing.mock_data(num_examples=4):
    m = ingest.ingest("tfds", ["bigearthnet/all"], tmp_path, num_shards=2,
                      store_dtype="float32")
    src = tfds.data_source("bigearthnet/all", split="train")
    names = tfds.builder("bigearthnet/all").info.features["labels"].feature.names
    recs = _records(tmp_path)
    assert m["bands"] == list(schema.SPECTRALGPT_BANDS) and m["cube_shapes"] == [[12, 120, 120]]
    for i in range(4):
      ex, r = src[i], recs[f"tfds:bigearthnet/all/train[{i}]"]
      np.testing.assert_array_equal(r["cube"][1], ex["B02"])        # 10 m band unchanged
      b8a = r["cube"][schema.SPECTRALGPT_BANDS.index("B8A")]
      np.testing.assert_allclose(b8a.reshape(60, 2, 60, 2).mean((1, 3))[5:-5, 5:-5].mean(),
                                 ex["B8A"][5:-5, 5:-5].mean(), rtol=1e-2)
      want = labels.bigearthnet_indices([names[j] for j in ex["labels"]])
      assert r["labels"] == want and r["num_classes"] == 19


def test_tfds_as_grain_source_for_eval():
  cfg = config.default_data_config()
  cfg.source, cfg.tfds.name = "tfds", "eurosat/all"
  cfg.train, cfg.num_epochs, cfg.batch_size, cfg.drop_remainder = False, 1, 4, False
  cfg.normalization, cfg.stats, cfg.label_type = "zscore", "eurosat_official", "single"
  with tfds.testing.mock_data(num_examples=10):
    src = tfds_source.open_source("eurosat/all")
    it = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
    batches = list(it)
  assert [b["cube"].shape for b in batches] == [(4, 12, 128, 128)] * 2 + [(2, 12, 128, 128)]
  assert batches[0]["label"].dtype == np.int32
  np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]),
                                [int(src[i]["label"]) for i in range(10)])
