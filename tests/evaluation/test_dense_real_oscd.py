"""Tiling, dense metrics and outputs together on the two real OSCD test cities (rennes,
hongkong) of the OSCD subset (the `oscd_root` fixture: $SPECTRALGPT_OSCD_DATA or
../shared/data/oscd_s2_subset): their true sizes and change maps, read in place (CC BY-NC-SA:
never copied into the repository)."""

import math
import warnings

import numpy as np
import pytest

from spectralgpt_jax.evaluation import dense_metrics as D, dense_outputs as O, tiling as T
from spectralgpt_jax.evaluation.context import EvalContext

rasterio = pytest.importorskip("rasterio")

CITIES = ("rennes", "hongkong")
RGB = ("B04", "B03", "B02")


def _read(path):
  with warnings.catch_warnings():   # the shipped images carry no geotransform (PROVENANCE.md)
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
    with rasterio.open(path) as src:
      return src.read(1)


def _to_grid(band, shape):
  """Cropped or edge-padded at the bottom / right to `shape` (hongkong's second date is 2 px
  smaller than its first date and change map)."""
  band = band[:shape[0], :shape[1]]
  return np.pad(band, [(0, shape[0] - band.shape[0]), (0, shape[1] - band.shape[1])], "edge")


@pytest.fixture(scope="module")
def cities(oscd_root):
  """city -> (date 1 [4, H, W] = B04, B03, B02 + the change map, date 2 [3, H, W], labels)."""
  out = {}
  for city in CITIES:
    raw = _read(oscd_root / "Onera Satellite Change Detection dataset - Train Labels" / city / "cm"
                / f"{city}-cm.tif")
    assert set(np.unique(raw)) <= {1, 2}, f"{city}: change map values {np.unique(raw)}"
    labels = raw.astype(np.int64) - 1                         # shipped 1 / 2 -> 0 / 1
    dates = []
    for folder in ("imgs_1", "imgs_2"):
      d = oscd_root / "Onera Satellite Change Detection dataset - Images" / city / folder
      bands = [_to_grid(_read(next(d.glob(f"*_{b}.tif"))), labels.shape) for b in RGB]
      dates.append(np.stack(bands).astype(np.float32))
    out[city] = (np.concatenate([dates[0], labels[None].astype(np.float32)]), dates[1], labels)
  return out


def oracle(d1, d2):
  """Reads the change map smuggled in as channel 3 of date 1: a perfect predictor."""
  return np.stack([1 - d1[:, 3], d1[:, 3]], 1)


def no_change(d1, d2):
  return np.stack([np.ones_like(d2[:, 0]), np.zeros_like(d2[:, 0])], 1)


def test_official_protocol_on_the_real_test_cities(cities):
  images = {c: cities[c][:2] for c in CITIES}
  labels = {c: cities[c][2] for c in CITIES}
  shapes = {c: labels[c].shape for c in CITIES}
  tiles = T.official_oscd_tiles(shapes)
  every = sum(math.prod(max(0, math.ceil((n - 127) / 63)) for n in s) for s in shapes.values())
  assert len(tiles) == every // 32 * 32 > 0
  cov = T.official_coverage(tiles, shapes)
  acc = T.official_oscd_confusion(oracle, images, labels)
  changed = sum(int((cov[c] * labels[c]).sum()) for c in CITIES)
  assert acc.counts[1, 1] == changed > 0 and acc.counts[0, 1] == acc.counts[1, 0] == 0
  m = D.official_oscd_metrics(acc.counts)
  assert m["official_oscd_f1"] == 1.0
  m = D.official_oscd_metrics(T.official_oscd_confusion(no_change, images, labels).counts)
  assert m["official_oscd_f1"] == 0.0 and m["official_oscd_fn"] == changed


def test_whole_city_prediction_metrics_and_saved_maps(cities, tmp_path):
  ctx = EvalContext(workdir=str(tmp_path), seed=0, pretrained="", model="", cache_dir="")
  acc = D.ConfusionAccumulator(2)
  for city in CITIES:
    d1, d2, labels = cities[city]
    scores = T.predict_tiled(oracle, (d1, d2), size=128, stride=96, batch_size=8)
    assert scores.shape == (2, *labels.shape)
    acc.update(labels, scores.argmax(0), name=city)
    paths = O.write_prediction(ctx, city, scores)
    # No georeferencing is invented for images that carry none.
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning), rasterio.open(
        paths["geotiff"]) as src:
      np.testing.assert_array_equal(src.read(1), labels)    # the label map's size and values
    O.write_panel(ctx, city, [d1[:3], d2], RGB, labels, scores.argmax(0), num_classes=2)
  m = D.change_detection_metrics(acc.counts)
  assert m["f1"] == m["precision"] == m["recall"] == m["iou"] == 1.0
  assert m["tp"] == sum(int(cities[c][2].sum()) for c in CITIES)
  assert sorted(p.name for p in (tmp_path / "panels").iterdir()) == ["hongkong.png", "rennes.png"]
