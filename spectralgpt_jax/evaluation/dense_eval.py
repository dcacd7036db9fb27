"""`type="dense"`: segmentation and change detection trained on the training machinery.

    config.evals.oscd = ml_collections.ConfigDict(dict(
        type="dense",
        train=common.dense_config(...),  # the whole training config (configs/common.py)
        test_data=<data config>,          # a dense source read whole (load_dense_images)
        tile_size=0, tile_stride=0,       # 0 = the model's input size / half of it
        tile_batch=32, official_oscd=True, save_predictions=True, ignored_classes=(),
        blend="average"))

Training as trained.py describes; OSCD's class weights come from the change fraction of the
training images. The evaluation hook predicts every test image whole with overlapping tiles
averaged (tiling.predict_tiled: the whole-scene engine of `predict`; `blend="cosine"` weighs
the overlaps as `predict` does by default, "average" keeps the plain mean the reported numbers
were scored with), accumulates one confusion matrix over the split
(dense_metrics) and the training objective on the averaged probabilities (`loss`: per-pixel
NLL with the run's class weights), and writes per image the class map at the label map's size
(GeoTIFF, PNG, scores; dense_outputs) and a panel; with `official_oscd` also the official OSCD
tile protocol under `official_oscd_*`. The scores scored are the float32 scores saved.

Several processes (`evaluate --distributed`): the model call is collective (its tile batch is
split over the devices of every process, and every process passes the same tiles), so every
process walks every image's tiles; image i is then scored, counted and written by process
i mod P alone (its own files, atomically), and the counts and NLL sums are added across
processes once. The official OSCD counts come from the same collective calls on every process
and are not added.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from data_pipelines import dense as dense_data
from spectralgpt_jax import losses
from spectralgpt_jax.evaluation import dense_metrics, dense_outputs, multihost, registry, tiling
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.metrics import saved_scores
from spectralgpt_jax.evaluation.trained import TrainedEvaluator


def training_class_weights(train_cfg: ml_collections.ConfigDict) -> tuple[float, float]:
  """The official OSCD weights from the change fraction of the training images."""
  p = dense_data.change_fraction(ml_collections.ConfigDict(train_cfg.data.to_dict()))
  weights = losses.oscd_class_weights(p)
  logging.info("OSCD training change fraction %.4f -> class weights %s", p, weights)
  return weights


def weighted_nll(scores: np.ndarray, mask: np.ndarray,
                 weights: np.ndarray) -> tuple[float, float]:
  """(sum of w * -log p(true class), sum of w) over the valid pixels (mask >= 0) of one image:
  scores [K, H, W] probabilities, mask [H, W], weights [K]."""
  valid = mask >= 0
  truth = np.where(valid, mask, 0)
  picked = np.take_along_axis(scores, truth[None], 0)[0][valid].astype(np.float64)
  w = weights[truth][valid]
  return float((w * -np.log(np.clip(picked, 1e-12, None))).sum()), float(w.sum())


@registry.register("dense")
class DenseEvaluator(TrainedEvaluator):
  """Trains `train` (segmentation or change detection); scores `test_data` whole."""

  MODEL_PREFIXES = ("seg_", "cd_")

  def __init__(self, *, ctx: EvalContext, train: ml_collections.ConfigDict,
               test_data: ml_collections.ConfigDict, tile_size: int = 0, tile_stride: int = 0,
               tile_batch: int = 32, official_oscd: bool = False, save_predictions: bool = True,
               ignored_classes: Sequence[int] = (), blend: str = "average"):
    super().__init__(ctx=ctx, train=train, test_data=test_data)
    self.tile_size, self.tile_stride, self.tile_batch = (int(tile_size), int(tile_stride),
                                                         int(tile_batch))
    self.official_oscd, self.save_predictions = bool(official_oscd), bool(save_predictions)
    self.ignored_classes = tuple(int(c) for c in ignored_classes)
    self.blend = str(blend)
    self.images: list | None = None
    self.history: list[dict] = []
    self.class_weights: tuple[float, ...] = ()

  def train_config(self) -> ml_collections.ConfigDict:
    config = super().train_config()
    if config.dense.oscd_class_weights and not config.dense.class_weights:
      config.dense.class_weights = training_class_weights(config)
    self.class_weights = tuple(float(w) for w in config.dense.class_weights)
    return config

  def _tiles(self, program) -> tuple[int, int]:
    size = self.tile_size or int(program.cube_shape[-1])
    return size, self.tile_stride or max(size // 2, 1)

  def evaluate(self, program, state, step: int) -> dict[str, float]:
    """Whole-split metrics at `step`; writes each image's prediction and panel (the hook)."""
    if self.images is None:
      self.images = dense_data.load_dense_images(self.test_data)
    norm = dense_data.tile_normalizer(self.test_data)
    fn = lambda *dates: program.predict_host(state.params, *[norm(d) for d in dates])
    change = program.kind == "change"
    k = program.model.spec.num_classes
    size, stride = self._tiles(program)
    weights = np.asarray(self.class_weights or (1.0,) * k, np.float64)
    acc = dense_metrics.ConfusionAccumulator(k)
    nll = np.zeros(2, np.float64)   # sum of w * -log p, sum of w: this process's images
    for i, img in enumerate(self.images):
      dates = [img["cube"], img["cube2"]] if change else [img["cube"]]
      scores = saved_scores(tiling.predict_tiled(fn, dates, size=size, stride=stride,
                                                 batch_size=self.tile_batch, blend=self.blend))
      if i % jax.process_count() != jax.process_index():
        continue   # another process scores and writes it
      pred = scores.argmax(0)
      acc.update(img["mask"], pred, name=img["key"])
      nll += weighted_nll(scores, img["mask"], weights)
      if self.save_predictions:
        self._write(img, scores, pred, [norm(d) for d in dates], k, step)
    acc = acc.sum_across_processes()
    nll = multihost.sum_across_processes(nll)
    if change:
      metrics = dense_metrics.change_detection_metrics(acc.counts)
    else:
      metrics = dense_metrics.segmentation_metrics(acc.counts,
                                                   ignored_classes=self.ignored_classes)
    metrics["loss"] = float(nll[0] / max(nll[1], 1e-12))
    if change and self.official_oscd:
      official = tiling.official_oscd_confusion(
          fn, {i["key"]: (i["cube"], i["cube2"]) for i in self.images},
          {i["key"]: i["mask"] for i in self.images})
      metrics.update(dense_metrics.official_oscd_metrics(official.counts))
    self.history.append({"step": step, **metrics})
    self.last = {"metrics": metrics, "confusion_matrix": acc.counts.tolist(),
                 "history": self.history,
                 "info": {"step": step, "tile_size": size, "tile_stride": stride,
                          "blend": self.blend,
                          "images": [i["key"] for i in self.images]}}
    return metrics

  def _write(self, img: dict[str, Any], scores: np.ndarray, pred: np.ndarray,
             dates: list[np.ndarray], k: int, step: int) -> None:
    """The image's prediction files and panel, written by this process (it scored them)."""
    ctx = self.ctx.local()
    dense_outputs.write_prediction(ctx, img["key"], scores, valid=img["mask"] >= 0,
                                   crs=img["crs"], transform=img["transform"],
                                   bounds=img["bounds"])
    dense_outputs.write_panel(ctx, img["key"], dates, img["bands"], img["mask"], pred,
                              num_classes=k, title=f"{img['key']} (step {step})")

  def report(self, config: ml_collections.ConfigDict) -> dict[str, Any]:
    self.last["info"]["class_weights"] = list(config.dense.class_weights)
    return self.last
