"""The `dense` evaluator end to end on the real shipped data: tiny models trained briefly on
the OSCD subset (change detection) and the Sen1Floods11 chip (segmentation), every metric
recomputed from the saved maps with scikit-learn and every output file checked
(tests/train/test_dense_train.py shows the change decoder learning). Data: the `oscd_root`
and `flood_root` fixtures (tests/conftest.py, $SPECTRALGPT_OSCD_DATA / _FLOOD_DATA)."""

import json
import pathlib

import numpy as np
import pytest

from configs.eval import oscd as oscd_config, sen1floods11 as flood_config
from data_pipelines import dense as dense_data, oscd
from spectralgpt_jax import losses
from spectralgpt_jax.evaluation import run_evals

from eval_recompute import check_dense_metrics

rasterio = pytest.importorskip("rasterio")


def _check_outputs(folder: pathlib.Path, key: str, mask: np.ndarray, num_classes: int):
  pred = folder / "predictions"
  with rasterio.open(pred / f"{key}.tif") as src:
    class_map = src.read(1)
  assert class_map.shape == mask.shape                       # the label map's size
  scores = np.load(pred / f"{key}_scores.npz")
  assert scores["scores"].shape == (num_classes, *mask.shape)
  np.testing.assert_allclose(scores["scores"].sum(0), 1.0, atol=1e-4)   # averaged probabilities
  valid = mask >= 0
  np.testing.assert_array_equal(class_map[valid], scores["scores"].argmax(0)[valid])
  for png in (pred / f"{key}.png", folder / "panels" / f"{key}.png"):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  return scores["scores"].argmax(0)


def test_oscd_tiny_change_detection_writes_every_metric_and_map(oscd_root, tmp_path):
  c = oscd_config.get_config("tiny,steps=3")
  c.root = str(oscd_root)
  c.evals.oscd.test_data.oscd.cities = "bercy"
  c.evals.oscd.tile_stride = 48                   # overlapping tiles: averaging exercised
  out = run_evals(c, str(tmp_path))
  report = json.loads((tmp_path / "oscd" / "metrics.json").read_text())
  m = report["metrics"]
  # Class weights from the training cities' change fraction, as the official code.
  train = [oscd.load_city(oscd_root, city)["mask"] for city in oscd_config.TRAIN_CITIES.split(",")]
  assert report["info"]["class_weights"] == pytest.approx(
      losses.oscd_class_weights(oscd.change_fraction(train)))
  mask = dense_data.load_dense_images(c.evals.oscd.test_data)[0]["mask"]
  pred = _check_outputs(tmp_path / "oscd", "bercy", mask, 2)
  valid = mask >= 0
  t, p = mask[valid], pred[valid]
  tp, fp, fn = int(((t == 1) & (p == 1)).sum()), int(((t == 0) & (p == 1)).sum()), int(
      ((t == 1) & (p == 0)).sum())
  assert (m["tp"], m["fp"], m["fn"]) == (tp, fp, fn)
  assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == valid.sum()
  assert m["f1"] == pytest.approx(2 * tp / max(2 * tp + fp + fn, 1))
  assert report["confusion_matrix"] == [[m["tn"], m["fp"]], [m["fn"], m["tp"]]]
  check_dense_metrics([(mask, pred)], 2, m, change=True)
  # The training objective (weighted NLL) on the averaged probabilities.
  w = np.asarray(report["info"]["class_weights"])[t]
  probs = np.load(tmp_path / "oscd" / "predictions" / "bercy_scores.npz")["scores"]
  picked = np.take_along_axis(probs, np.where(valid, mask, 0)[None], 0)[0][valid]
  assert m["loss"] == pytest.approx((w * -np.log(picked)).sum() / w.sum(), rel=1e-4)
  # bercy's 20 official 128 px tiles are fewer than one batch of 32: the official protocol
  # (last partial batch dropped) scores nothing.
  assert m["official_oscd_tp"] + m["official_oscd_fp"] + m["official_oscd_tn"] == 0
  assert out["oscd/f1"] == m["f1"]


def test_sen1floods11_tiny_segmentation(flood_root, tmp_path):
  c = flood_config.get_config("tiny,steps=3")
  c.root = str(flood_root)
  run_evals(c, str(tmp_path))
  report = json.loads((tmp_path / "flood" / "metrics.json").read_text())
  m = report["metrics"]
  image = dense_data.load_dense_images(c.evals.flood.test_data)[0]
  pred = _check_outputs(tmp_path / "flood", image["key"], image["mask"], 2)
  check_dense_metrics([(image["mask"], pred)], 2, m, change=False)
  assert m["official_miou_all_classes"] == pytest.approx((m["iou/0"] + m["iou/1"]) / 2)
  assert np.asarray(report["confusion_matrix"]).sum() == m["num_pixels"] == (
      image["mask"] >= 0).sum()
