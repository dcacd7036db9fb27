"""The SegMunich reader on small GeoTIFFs written here in the dataset's layout (no SegMunich
data ships with the project): channels, label remap, refusals, and the pipeline source."""

import numpy as np
import pytest

from data_pipelines import config, dense, pipeline, schema, segmunich
from data_pipelines.errors import BadInputError

CODES = np.array([0, 21, 22, 23, 31, 32, 33, 41, 13, 14, 5, 11, 12, 255], np.uint8)
WANT = np.array([0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 5, 11, 12, -1], np.int32)
SIZE = 16


def _write(path, arr):
  import rasterio
  path.parent.mkdir(parents=True, exist_ok=True)
  with rasterio.open(path, "w", driver="GTiff", height=arr.shape[-2], width=arr.shape[-1],
                     count=arr.shape[0], dtype=arr.dtype.name, crs="EPSG:32632",
                     transform=rasterio.Affine(10, 0, 690000, 0, -10, 5340000)) as dst:
    dst.write(arr)


def _image(seed):
  rng = np.random.default_rng(seed)
  return rng.integers(100, 5000, (10, SIZE, SIZE)).astype(np.uint16)


@pytest.fixture()
def root(tmp_path):
  pytest.importorskip("rasterio")
  names = {"train": ["m_0001", "m_0002", "m_0003"], "test": ["m_0100"]}
  for split, items in names.items():
    for i, name in enumerate(items):
      _write(tmp_path / split / "img" / f"{name}.tif", _image(i))
      label = np.resize(np.roll(CODES, i), (SIZE, SIZE))
      _write(tmp_path / split / "label" / f"{name}.tif", label[None])
    (tmp_path / "dataset").mkdir(exist_ok=True)
    (tmp_path / "dataset" / f"{split}.txt").write_text(
        "".join(f"{n}.tif\n" for n in items))   # names with or without extension
  return tmp_path


def test_label_remap_and_ignore(root):
  rec = segmunich.load_image(root, "train", "m_0001")
  want = np.resize(WANT, (SIZE, SIZE))
  np.testing.assert_array_equal(rec["mask"], want)
  assert rec["mask"].dtype == np.int32 and rec["key"] == "m_0001"
  assert rec["crs"] == "EPSG:32632" and rec["bounds"][0] == 690000


def test_channels_by_name_and_official(root):
  raw = _image(0)
  rec = segmunich.load_image(root, "train", "m_0001")
  assert rec["cube"].shape == (12, SIZE, SIZE) and rec["bands"] == list(schema.SPECTRALGPT_BANDS)
  for i, band in enumerate(schema.SPECTRALGPT_BANDS):
    src = "B8A" if band in ("B08", "B09") else band      # nearest wavelength for the gaps
    np.testing.assert_array_equal(rec["cube"][i], raw[segmunich.SEGMUNICH_BANDS.index(src)])
  off = segmunich.load_image(root, "train", "m_0001", channels="official_mean_twice")
  np.testing.assert_array_equal(off["cube"][:10], raw.astype(np.float32))
  mean = raw.astype(np.float32).mean(axis=0)
  np.testing.assert_allclose(off["cube"][10], mean)
  np.testing.assert_allclose(off["cube"][11], mean)
  with pytest.raises(ValueError, match="official_mean_twice"):
    segmunich.split_records(root, "train", channels="mean")


def test_refusals_name_the_file(root):
  _write(root / "train" / "label" / "m_0002.tif", np.full((1, SIZE, SIZE), 99, np.uint8))
  with pytest.raises(BadInputError, match=r"m_0002\.tif: \[label\] codes \[99\]"):
    segmunich.load_image(root, "train", "m_0002")
  _write(root / "train" / "img" / "m_0003.tif", _image(3)[:9])
  with pytest.raises(BadInputError, match=r"m_0003\.tif.*missing band"):
    segmunich.load_image(root, "train", "m_0003")
  with pytest.raises(FileNotFoundError, match="SegMunich root"):
    segmunich.list_names(root / "nowhere", "train")


def test_segmunich_source_batches_and_whole_images(root):
  cfg = config.default_data_config()
  cfg.update(source="segmunich", paths=str(root), segmunich={"dataset_split": "train"},
             image_size=SIZE,
             batch_size=2, rot90=True, vflip_prob=0.5, with_keys=True, minmax_eps=1e-9)
  it = pipeline.make_pipeline(cfg, process_index=0, process_count=1)
  b = next(it)
  assert b["cube"].shape == (2, 12, SIZE, SIZE) and b["mask"].shape == (2, SIZE, SIZE)
  assert set(np.unique(b["mask"])) <= set(WANT.tolist())
  assert 0.0 <= b["cube"].min() and b["cube"].max() <= 1.0
  cfg.segmunich.dataset_split = "test"
  (im,) = dense.load_dense_images(cfg)
  assert im["key"] == "m_0100" and im["cube2"] is None and im["transform"][0] == 10.0
  assert dense.class_names("segmunich")[0].startswith("class_0")


def test_segmunich_ingest_and_inspect(root, tmp_path, capsys):
  import json
  from data_pipelines import example_codec, tfrecord
  from spectralgpt_jax.cli import ingest as ingest_cli
  from spectralgpt_jax.cli import inspect as inspect_cli
  out = tmp_path / "shards"
  assert ingest_cli.main(["--source", "segmunich", "--input", str(root), "--split", "train",
                          "--out", str(out), "--shards", "2"]) == 0
  manifest = json.loads((out / "manifest.json").read_text())
  keys = sorted(example_codec.decode_record(d)["key"] for s in manifest["shards"]
                for _, d in tfrecord.iter_records(out / s["file"]))
  assert keys == ["m_0001", "m_0002", "m_0003"]   # the same keys as the in-memory source
  assert manifest["labels"]["num_classes"] == 13 and manifest["cube_shapes"] == [[12, 16, 16]]
  capsys.readouterr()
  assert inspect_cli.main([str(out), "--json"]) == 0
  masks = json.loads(capsys.readouterr().out)["masks"]
  assert set(masks["classes"]) == {str(v) for v in WANT if v >= 0}
  ignored = sum(int((np.resize(np.roll(CODES, i), SIZE * SIZE) == 255).sum()) for i in range(3))
  assert masks["ignored_share"] == pytest.approx(ignored / (3 * SIZE * SIZE))
