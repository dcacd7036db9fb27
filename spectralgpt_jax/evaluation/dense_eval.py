"""`type="dense"`: segmentation and change detection trained on the training machinery.

    config.evals.oscd = ml_collections.ConfigDict(dict(
        type="dense",
        train=common.dense_config(...),  # the whole training config (configs/common.py)
        test_data=<data config>,          # a dense source read whole (load_dense_images)
        tile_size=0, tile_stride=0,       # 0 = the model's input size / half of it
        tile_batch=32, official_oscd=True, save_predictions=True))

The run is `train.loop.train` in `<eval workdir>/run` (resume, checkpoints, TensorBoard),
started from the context's pretrained MAE encoder (finetune.pretrained_run) or from scratch.
OSCD's class weights come from the change fraction of the training images. The evaluation
hook predicts every test image whole with overlapping tiles averaged (tiling.predict_tiled),
accumulates one confusion matrix over the split (dense_metrics) and the training objective on
the averaged probabilities (`loss`: per-pixel NLL with the run's class weights), and writes per
image the
class map at the label map's size (GeoTIFF, PNG, scores; dense_outputs) and a panel; with
`official_oscd` also the official OSCD tile protocol under `official_oscd_*`.
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np
from absl import logging

from data_pipelines import dense as dense_data
from spectralgpt_jax import losses
from spectralgpt_jax.evaluation import dense_metrics, dense_outputs, registry, tiling
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.evaluation.finetune import pretrained_run
from spectralgpt_jax.train import loop


def training_class_weights(train_cfg: ml_collections.ConfigDict) -> tuple[float, float]:
  """The official OSCD weights from the change fraction of the training images."""
  p = dense_data.change_fraction(ml_collections.ConfigDict(train_cfg.data.to_dict()))
  weights = losses.oscd_class_weights(p)
  logging.info("OSCD training change fraction %.4f -> class weights %s", p, weights)
  return weights


@registry.register("dense")
class DenseEvaluator:
  """Trains `cfg.train` (segmentation or change detection); scores `cfg.test_data` whole."""

  def __init__(self, cfg: ml_collections.ConfigDict, ctx: EvalContext):
    registry.require_fields(
        cfg, ctx, "dense", ("train", "test_data"),
        "`train` is a whole dense training config (configs/common.py:dense_config), `test_data` "
        "the dense split scored whole (configs/evaluation.py:dense builds both)")
    self.cfg, self.ctx = cfg, ctx
    self.images: list | None = None
    self.history: list[dict] = []
    self.class_weights: tuple[float, ...] = ()
    self.last: tuple = ()

  def _train_config(self) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict(self.cfg.train.to_dict())
    config.seed = self.ctx.seed
    config.init_from.workdir = pretrained_run(self.ctx)
    if self.ctx.model and self.ctx.model.startswith(("seg_", "cd_")):
      config.model.name = self.ctx.model
    if config.dense.oscd_class_weights and not config.dense.class_weights:
      config.dense.class_weights = training_class_weights(config)
    return config

  def _tiles(self, program) -> tuple[int, int]:
    size = int(self.cfg.get("tile_size", 0) or program.cube_shape[-1])
    stride = int(self.cfg.get("tile_stride", 0) or max(size // 2, 1))
    return size, stride

  def evaluate(self, program, state, step: int) -> dict[str, float]:
    """Whole-split metrics at `step`; writes each image's prediction and panel (the hook)."""
    if self.images is None:
      self.images = dense_data.load_dense_images(self.cfg.test_data)
    norm = dense_data.tile_normalizer(self.cfg.test_data)
    fn = lambda *dates: program.predict_dense(state.params, *[norm(d) for d in dates])
    change = program.kind == "change"
    k = program.model.spec.num_classes
    size, stride = self._tiles(program)
    batch = int(self.cfg.get("tile_batch", 32))
    weights = np.asarray(self.class_weights or (1.0,) * k, np.float64)
    acc = dense_metrics.ConfusionAccumulator(k)
    nll_sum, nll_count = 0.0, 0
    for img in self.images:
      dates = [img["cube"], img["cube2"]] if change else [img["cube"]]
      scores = tiling.predict_tiled(fn, dates, size=size, stride=stride, batch_size=batch)
      pred = scores.argmax(0)
      acc.update(img["mask"], pred, name=img["key"])
      valid = img["mask"] >= 0
      picked = np.take_along_axis(scores, np.where(valid, img["mask"], 0)[None], 0)[0]
      w = weights[np.where(valid, img["mask"], 0)][valid]
      nll_sum += float((w * -np.log(np.clip(picked[valid], 1e-12, None))).sum())
      nll_count += float(w.sum())
      if self.cfg.get("save_predictions", True):
        dense_outputs.write_prediction(self.ctx, img["key"], scores, valid=img["mask"] >= 0,
                                       crs=img["crs"], transform=img["transform"],
                                       bounds=img["bounds"])
        dense_outputs.write_panel(self.ctx, img["key"], [norm(d) for d in dates], img["bands"],
                                  img["mask"], pred, num_classes=k,
                                  title=f"{img['key']} (step {step})")
    acc = acc.sum_across_processes()
    if change:
      metrics = dense_metrics.change_detection_metrics(acc.counts)
    else:
      metrics = dense_metrics.segmentation_metrics(
          acc.counts, ignored_classes=tuple(self.cfg.get("ignored_classes", ())))
    metrics["loss"] = nll_sum / max(nll_count, 1e-12)
    if change and self.cfg.get("official_oscd", False):
      official = tiling.official_oscd_confusion(
          fn, {i["key"]: (i["cube"], i["cube2"]) for i in self.images},
          {i["key"]: i["mask"] for i in self.images})
      metrics.update(dense_metrics.official_oscd_metrics(official.counts))
    self.history.append({"step": step, **metrics})
    self.last = (metrics, {"step": step, "tile_size": size, "tile_stride": stride,
                           "images": [i["key"] for i in self.images]}, acc.counts)
    return metrics

  def run(self) -> dict[str, float]:
    config = self._train_config()
    self.class_weights = tuple(float(w) for w in config.dense.class_weights)
    loop.train(config, os.path.join(self.ctx.workdir, "run"), evaluate=self.evaluate)
    if not self.last:
      raise RuntimeError(f"dense training in {self.ctx.workdir} ended without an evaluation")
    metrics, info, counts = self.last
    info["class_weights"] = list(config.dense.class_weights)
    self.ctx.write_json("metrics.json", {"metrics": metrics, "info": info,
                                         "confusion_matrix": counts.tolist(),
                                         "history": self.history})
    return metrics
