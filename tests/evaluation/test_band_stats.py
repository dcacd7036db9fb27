"""Per-band statistics features (evaluation/band_stats.py): the formula against a per-band NumPy
loop, and `pretrained="band_stats"` through the feature cache and the linear probe on real
EuroSAT files, compared with statistics computed here from the files (read with rasterio)."""

import os
import pathlib

import numpy as np
import pytest

pytest.importorskip("rasterio")

from configs import evaluation as E  # noqa: E402
from data_pipelines import ingest  # noqa: E402
from data_pipelines.labels import EUROSAT_CLASSES  # noqa: E402
from spectralgpt_jax.evaluation import band_stats, features, registry  # noqa: E402
from spectralgpt_jax.evaluation.context import EvalContext  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("SPECTRALGPT_EUROSAT_DATA",
                                   REPO.parent / "shared" / "data" / "eurosat_ms_subset"))
SPLIT = REPO / "configs" / "eval" / "splits" / "eurosat_subset_test.txt"
# File planes B01..B12 then B8A -> the model's 12 bands by name (B10 = plane 9 dropped).
MODEL_PLANES = [0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 10, 11]


def _read(example_id: str):
  """(cube [12, 64, 64] float32 in the model's band order, label) straight from the file."""
  import rasterio  # pylint: disable=g-import-not-at-top
  cls = pathlib.Path(example_id).stem.rsplit("_", 1)[0]
  with rasterio.open(DATA / cls / pathlib.Path(example_id).name) as src:
    return src.read().astype(np.float32)[MODEL_PLANES], EUROSAT_CLASSES.index(cls)


def test_band_statistics_formula():
  rng = np.random.default_rng(0)
  cube = rng.random((3, 4, 5, 6)).astype(np.float32)
  got = band_stats.band_statistics(cube)
  want = np.array([[cube[b, c].mean() for c in range(4)] + [cube[b, c].std() for c in range(4)]
                   for b in range(3)])
  assert got.shape == (3, 8) and got.dtype == np.float32
  np.testing.assert_allclose(got, want, rtol=1e-5)
  series = rng.random((2, 3, 4, 5, 5))          # [B, T, C, H, W]: dates fold into bands
  assert band_stats.band_statistics(series).shape == (2, 24)


@pytest.fixture(scope="module")
def eurosat_test_shards(tmp_path_factory):
  if not (DATA / "SHA256SUMS.txt").exists():
    pytest.skip(f"EuroSAT-MS subset not found at {DATA} (set SPECTRALGPT_EUROSAT_DATA)")
  out = tmp_path_factory.mktemp("eurosat_test")
  ingest.ingest("eurosat", [str(DATA)], out, num_shards=2, split_file=str(SPLIT))
  return out


def _data(path, normalization="none", **fields):
  return E.eval_data(label_type="single", num_classes=10, image_size=64, batch_size=16,
                     normalization=normalization, paths=str(path), eval_crop_pct=1.0, **fields)


def test_band_stats_features_of_real_files(eurosat_test_shards, tmp_path):
  ctx = EvalContext(workdir=str(tmp_path / "w"), seed=0, pretrained=features.BAND_STATS,
                    model="", cache_dir=str(tmp_path / "cache"))
  fs = features.FeatureCache(ctx).get(_data(eurosat_test_shards))
  assert fs.features.shape == (60, 24) and list(fs.ids) == sorted(fs.ids)
  for i in (0, 31, 59):   # DN statistics of the file itself (no normalization, no resize)
    cube, label = _read(fs.ids[i])
    assert fs.labels[i] == label
    np.testing.assert_allclose(fs.features[i, :12], cube.mean(axis=(1, 2)), rtol=1e-4)
    np.testing.assert_allclose(fs.features[i, 12:], cube.std(axis=(1, 2)), rtol=1e-3)
  again = features.FeatureCache(ctx)
  np.testing.assert_array_equal(again.get(_data(eurosat_test_shards)).features, fs.features)
  assert again.extracted == 0 and features.checkpoint_identity(ctx) == {"features": "band_stats"}


def test_linear_probe_on_band_stats(eurosat_test_shards, tmp_path):
  """The probe fits the 60 test files themselves: far above chance if the features carry the
  class (a check that rows and labels stay paired), not a measurement."""
  ctx = EvalContext(workdir=str(tmp_path / "lin"), seed=0, pretrained=features.BAND_STATS,
                    model="", cache_dir=str(tmp_path / "cache"))
  data = _data(eurosat_test_shards, normalization="minmax")
  cfg = E.linear(data, data, l2_strengths=(1e-3,))
  metrics = registry.build("linear", cfg, ctx).run()
  assert metrics["accuracy"] > 0.6 and (tmp_path / "lin" / "predictions.npz").exists()
