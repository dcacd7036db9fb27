"""Building blocks of the evaluation configs (configs/eval/): the top level, data blocks and
the linear / k-NN protocol blocks read by spectralgpt_jax.evaluation (docs/evaluation.md).

Top level: seed, pretrained (orbax run or checkpoint-step dir, or an exported weights file;
"" = randomly initialised encoder), model (variant name; the architecture when pretrained is
""), cache_dir ("" = <workdir>/../feature_cache, shared by the points of a sweep), evals.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from data_pipelines.config import default_data_config, set_fields

DEFAULT_L2 = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def eval_config(model: str, pretrained: str = "", seed: int = 0) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = seed
  c.pretrained = pretrained
  c.model = model
  c.cache_dir = ""
  c.evals = ml_collections.ConfigDict()
  return c


def eval_data(*, label_type: str, num_classes: int, image_size: int, batch_size: int = 64,
              **fields) -> ml_collections.ConfigDict:
  """A `default_data_config()` block for one deterministic pass (eval resize + center crop).

  `fields`: data fields; a dict updates a source's block (`tfds={"name": "eurosat/all"}`)."""
  d = default_data_config()
  d.train, d.shuffle, d.drop_remainder, d.num_epochs = False, False, False, 1
  d.label_type, d.num_classes = label_type, num_classes
  d.image_size, d.batch_size = image_size, batch_size
  return set_fields(d, **fields)


def linear(train, test, val=None, *, l2_strengths=DEFAULT_L2, pooling: str = "mean",
           layers=None, compute_dtype: str = "float32") -> ml_collections.ConfigDict:
  """Linear probe on frozen features over a list of L2 strengths (chosen on val if given)."""
  b = ml_collections.ConfigDict({"type": "linear", "train_data": train, "test_data": test})
  if val is not None:
    b.val_data = val
  b.l2_strengths = tuple(l2_strengths)
  b.pooling = pooling     # "mean" | "skip_first" (the official classifier's pooling)
  b.layers = layers if layers is not None else config_dict.placeholder(tuple)  # None = output
  b.compute_dtype = compute_dtype  # "float32" | "bfloat16" encoder matmuls (docs/evaluation.md)
  return b


def knn(train, test, *, k: int = 20, temperature: float = 0.07, pooling: str = "mean",
        layers=None, compute_dtype: str = "float32") -> ml_collections.ConfigDict:
  """Cosine k-NN with temperature-weighted votes on frozen features."""
  b = ml_collections.ConfigDict({"type": "knn", "train_data": train, "test_data": test})
  b.k, b.temperature, b.pooling = k, temperature, pooling
  b.layers = layers if layers is not None else config_dict.placeholder(tuple)
  b.compute_dtype = compute_dtype  # "float32" | "bfloat16" encoder matmuls (docs/evaluation.md)
  return b


def add_protocols(c: ml_collections.ConfigDict, name: str, protocol: str, train, test,
                  val=None, **kwargs) -> None:
  """config.evals.<name>_linear and/or <name>_knn ("linear" | "knn" | "both")."""
  if protocol not in ("linear", "knn", "both"):
    raise ValueError(f"protocol {protocol!r} not in ('linear', 'knn', 'both')")
  if protocol in ("linear", "both"):
    c.evals[f"{name}_linear"] = linear(train, test, val, **kwargs.get("linear", {}))
  if protocol in ("knn", "both"):
    c.evals[f"{name}_knn"] = knn(train, test, **kwargs.get("knn", {}))


def finetune(train: ml_collections.ConfigDict, test) -> ml_collections.ConfigDict:
  """Full fine-tuning on the training machinery: `train` is a whole fine-tuning config
  (configs/common.py:finetune_config; its data block the training split), `test` the split
  scored every `train.eval_every_steps` steps and at the end."""
  return ml_collections.ConfigDict({"type": "finetune", "train": train, "test_data": test})


def dense(train: ml_collections.ConfigDict, test, *, official_oscd: bool = False,
          tile_size: int = 0, tile_stride: int = 0, tile_batch: int = 32,
          ignored_classes: tuple[int, ...] = ()) -> ml_collections.ConfigDict:
  """Segmentation / change detection on the training machinery: `train` is a whole dense
  training config (configs/common.py:dense_config), `test` a dense data block scored whole
  (tiles of `tile_size`, 0 = the model input, every `tile_stride`, 0 = half a tile, averaged);
  `official_oscd` adds the official OSCD tile protocol's metrics."""
  return ml_collections.ConfigDict({
      "type": "dense", "train": train, "test_data": test, "official_oscd": official_oscd,
      "tile_size": tile_size, "tile_stride": tile_stride, "tile_batch": tile_batch,
      "ignored_classes": tuple(ignored_classes), "save_predictions": True})


def change_probe(*, root: str, train_cities: str, test_cities: str, image_size: int = 64,
                 crops_per_city: int = 16, l2: float = 1e-2, batch_size: int = 16,
                 bands: str = "", spectral_mode: str = "s2") -> ml_collections.ConfigDict:
  """OSCD change probe on frozen encoder token differences (evaluation/change_probe.py)."""
  return ml_collections.ConfigDict({
      "type": "change_probe", "root": root, "train_cities": train_cities,
      "test_cities": test_cities, "image_size": image_size, "crops_per_city": crops_per_city,
      "l2": l2, "batch_size": batch_size, "bands": bands, "spectral_mode": spectral_mode})
