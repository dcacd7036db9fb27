"""Frozen-encoder features over whole splits, cached on disk.

Features of an example = pooled tokens of the chosen encoder outputs, concatenated:
  layers=None: the model's feature output (MAE: encoder tokens after the final norm, no
    masking; ViT: tokens after the last block), as `inference.SpectralGPT.features`;
  layers=(3, 5, 7, 11): raw outputs of those blocks (0-based, negative counts from the end;
    PANGAEA's choice for depth 12), read with flax `capture_intermediates` (no model change).
  pooling: "mean" over all tokens (default) or "skip_first" (tokens 1..L-1, the official).
  compute_dtype: "float32" (default) or "bfloat16" matmul operands with float32 accumulation,
    float32 params, LayerNorm, softmax and residual stream (docs/evaluation.md has what it
    costs: features and probe metrics against float32 on real patches).
Result for N examples: features [N, len(layers) * D] float32, labels [N] int32 or [N, K]
float32, ids [N] str (record keys), rows sorted by id. Every example is kept (no
drop_remainder).

Cache: `<cache_dir>/<key>.npz` (+ `.json` with what the key hashes): the checkpoint identity
(path, step, file size and mtime), the data config (shard files with sizes and mtimes; batch
and worker settings excluded), layers, pooling, compute dtype and the band input (band subset
and spectral mode, band_input.py; absent for the 12 SpectralGPT bands). Writes are atomic (process 0).
Multi-host: each process extracts its shards, then rows are gathered to every process and
sorted by id, so every process count gives the same rows in the same order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from data_pipelines import datasets, pipeline, storage
from spectralgpt_jax import checkpoints, models
from data_pipelines.atomic_io import atomic_write
from spectralgpt_jax.evaluation import band_input as band_input_lib
from spectralgpt_jax.evaluation import multihost
from spectralgpt_jax.evaluation.band_input import BandInput
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.inference import SpectralGPT, load
from spectralgpt_jax.inference.model import encoder_tokens
from spectralgpt_jax.models.shapes import abstract_input
from spectralgpt_jax.models.transformer import Block

POOLINGS = ("mean", "skip_first")
BAND_STATS = "band_stats"  # `pretrained` value: per-band image statistics (band_stats.py)
CACHE_VERSION = 2  # 2: rows sorted by id; compute_dtype in the key
# data fields that do not change which examples are read or their pixels.
_DATA_FIELDS_IGNORED = ("batch_size", "num_workers", "per_worker_buffer_size", "cycle_length",
                        "shuffle", "shuffle_window", "seed", "num_epochs", "drop_remainder",
                        "train", "with_keys", "skip_corrupt", "crop_scale", "crop_ratio",
                        "hflip_prob", "vflip_prob")


@dataclasses.dataclass
class FeatureSet:
  """features [N, F] float32, labels [N] int32 or [N, K] float32, ids [N] str."""
  features: np.ndarray
  labels: np.ndarray
  ids: np.ndarray


# ------------------------------------------------------------------------------ encoder

def load_encoder(ctx: EvalContext) -> SpectralGPT:
  """The frozen encoder of `ctx`: loaded weights, or a random init of `ctx.model` (seed)."""
  if ctx.pretrained:
    return load(ctx.pretrained, model=ctx.model or None)
  if not ctx.model:
    raise ValueError("pretrained is '' and no model variant is named: set config.model")
  record = {"name": ctx.model}
  net = models.build_model(record, runtime=False)
  rngs = {"params": jax.random.key(ctx.seed), "masking": jax.random.key(ctx.seed + 1)}
  x = abstract_input(net.spec)
  params = jax.jit(lambda: nn.unbox(net.init(rngs, jnp.zeros(x.shape, x.dtype)))["params"])()
  return SpectralGPT(net, params, {"model": record}, f"random:{ctx.model}:seed{ctx.seed}")


def checkpoint_identity(ctx: EvalContext) -> dict[str, Any]:
  """What names the encoder's weights (for cache keys), without reading them."""
  if not ctx.pretrained:
    return {"random": ctx.model, "seed": int(ctx.seed)}
  if ctx.pretrained == BAND_STATS:
    return {"features": BAND_STATS}
  if storage.is_url(ctx.pretrained):   # objects carry no mtime that fsspec reports alike
    path = ctx.pretrained
    ident = {"path": path, "model": ctx.model}
    if storage.isdir(path):
      ident["step"] = checkpoints.resolve(path)[1]
    else:
      ident["size"] = storage.size(path)
    return ident
  path = os.path.abspath(os.path.expanduser(ctx.pretrained))
  ident: dict[str, Any] = {"path": path, "model": ctx.model}
  if os.path.isdir(path):
    root, step = checkpoints.resolve(path)
    step_dir = os.path.join(str(root), str(step))
    ident.update(step=step, mtime=os.stat(step_dir).st_mtime_ns)
  else:
    st = os.stat(path)
    ident.update(size=st.st_size, mtime=st.st_mtime_ns)
  return ident


# ------------------------------------------------------------------------------ extraction

def _layer_indices(depth: int, layers: Sequence[int] | None) -> tuple[int, ...] | None:
  if layers is None:
    return None
  out = tuple(int(i) % depth if -depth <= int(i) < depth else None for i in layers)
  if None in out or not out:
    raise ValueError(f"layers {list(layers)} out of range for an encoder of depth {depth}")
  return out


def feature_fn(enc: SpectralGPT, layers: Sequence[int] | None, pooling: str,
               compute_dtype: str = "float32", band_kwargs: dict | None = None):
  """jitted (params, x [B, C, H, W]) -> pooled features [B, len(layers) * D] float32.

  `compute_dtype`: "float32" (default) or "bfloat16" matmul operands (`enc.compute_model`).
  `band_kwargs`: wavelengths / fwhm / drop_groups of the input (band_input.BandInput.apply).
  Blocks after the deepest one asked for are not computed (XLA drops unused work).
  """
  if pooling not in POOLINGS:
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
  net = enc.compute_model(compute_dtype)
  idx = _layer_indices(net.spec.depth, layers)
  band_kwargs = dict(band_kwargs or {})

  def tokens(params, x) -> list[jax.Array]:
    if idx is None:
      return [encoder_tokens(net, params, x, **band_kwargs)]
    is_block = lambda mdl, method: (method == "__call__" and isinstance(mdl, Block)
                                    and mdl.parent is not None and mdl.parent.name == "blocks")
    _, state = encoder_tokens(net, params, x, capture_intermediates=is_block,
                              mutable=["intermediates"], **band_kwargs)
    blocks = state["intermediates"]["blocks"]
    return [blocks[f"layers_{i}"]["__call__"][0] for i in idx]

  def pooled(params, x):
    outs = tokens(params, x)
    if pooling == "skip_first":
      outs = [t[:, 1:] for t in outs]
    return jnp.concatenate([t.astype(jnp.float32).mean(axis=1) for t in outs], axis=-1)

  return jax.jit(pooled)


def eval_data_config(data_cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """One deterministic pass over the whole split, with record keys."""
  cfg = ml_collections.ConfigDict(data_cfg.to_dict())
  cfg.train, cfg.shuffle, cfg.drop_remainder, cfg.with_keys = False, False, False, True
  cfg.num_epochs = 1
  if not datasets.get(cfg.source).labelled:
    raise ValueError(f"evaluation needs labelled data; data.source {cfg.source!r} has no labels")
  if cfg.label_type not in ("single", "multi"):
    raise ValueError(f"evaluation data needs label_type 'single' or 'multi', got "
                     f"{cfg.label_type!r}")
  return cfg


def extract_features(enc: SpectralGPT, data_cfg: ml_collections.ConfigDict, *,
                     layers: Sequence[int] | None = None, pooling: str = "mean",
                     compute_dtype: str = "float32", fn=None,
                     band_input: BandInput | None = None) -> FeatureSet:
  """Features of every example of the split (this process's share, then gathered), rows in
  `canonical_order`.

  `fn`: a `feature_fn(enc, layers, pooling, compute_dtype)` to reuse (one compile for several
  splits). `band_input`: the band subset and spectral mode the encoder sees (band_input.py;
  None = the 12 SpectralGPT bands), applied after the data's normalization; `fn` must be
  built with its `band_kwargs`.
  """
  cfg = eval_data_config(data_cfg)
  band_input = band_input or band_input_lib.parse("")
  enc = band_input_lib.encoder_for(enc, band_input)
  fn = fn or feature_fn(enc, layers, pooling, compute_dtype,
                        band_input.model_kwargs())
  local_bs = int(cfg.batch_size) // jax.process_count()
  feats, labels, ids, pending = [], [], [], None
  for batch in pipeline.make_iterator(cfg):
    x = enc.prepare(batch["cube"], bands=cfg.bands, normalize=False,  # the pipeline normalized
                    image_size=batch["cube"].shape[-1])
    x, _ = band_input.apply(x)
    n = x.shape[0]
    if n < local_bs:  # pad the last batch: one compiled shape
      x = np.concatenate([x, np.zeros((local_bs - n, *x.shape[1:]), x.dtype)])
    out = fn(enc.params, x)  # dispatched; read back after the next batch is read and sent
    if pending is not None:
      feats.append(np.asarray(pending[0])[:pending[1]])
    pending = (out, n)
    labels.append(np.asarray(batch["label"]))
    ids.append(np.asarray(batch["key"]).astype(str))
  if pending is not None:
    feats.append(np.asarray(pending[0])[:pending[1]])
  return collect(feats, labels, ids, cfg)


def collect(feats: list[np.ndarray], labels: list[np.ndarray], ids: list[np.ndarray],
            cfg: ml_collections.ConfigDict) -> FeatureSet:
  """This process's batches of features [n, D], labels and ids -> the split's FeatureSet
  (gathered over processes), rows in `canonical_order`; ValueError naming the data when no
  example was read."""
  what = f"data {cfg.paths or cfg.tfds.name!r}"
  if jax.process_count() == 1 and not feats:
    raise ValueError(f"{what} yielded no examples")
  local = (FeatureSet(np.concatenate(feats), np.concatenate(labels), np.concatenate(ids))
           if feats else None)
  if jax.process_count() > 1:
    local = gather(local, what)
  return canonical_order(local)


def canonical_order(fs: FeatureSet) -> FeatureSet:
  """Rows sorted by example id (stable): the same order whatever the process count, workers
  or shard interleaving, so order-dependent numbers (official_batch_micro_map) and
  predictions.npz do not depend on how the split was read."""
  order = np.argsort(fs.ids, kind="stable")
  return FeatureSet(fs.features[order], fs.labels[order], fs.ids[order])


def gather(fs: FeatureSet | None, what: str = "the split") -> FeatureSet:
  """FeatureSet of all processes (rows in process order). A process that read no example
  passes None; then every process raises the same ValueError (no one waits forever)."""
  counts = multihost.gather_rows(np.asarray([0 if fs is None else len(fs.ids)], np.int64))
  if (counts == 0).any():
    raise ValueError(f"{what}: processes {np.flatnonzero(counts == 0).tolist()} of "
                     f"{len(counts)} read no example (examples per process: {counts.tolist()});"
                     " write more shards or run fewer processes")
  return FeatureSet(multihost.gather_rows(fs.features), multihost.gather_rows(fs.labels),
                    multihost.gather_strings(fs.ids))


# ------------------------------------------------------------------------------ cache

def data_identity(data_cfg: ml_collections.ConfigDict) -> dict[str, Any]:
  """The data config fields that decide the examples and their pixels, and the shard files."""
  d = {k: v for k, v in data_cfg.to_dict().items() if k not in _DATA_FIELDS_IGNORED}
  files = datasets.get(data_cfg.source).files(data_cfg)  # shards, or the dataset folder
  if files is not None:
    d["files"] = files
  split_file = data_cfg.get("split_file", "")
  if split_file and os.path.exists(split_file):  # its ids, not its name, decide the examples
    with open(split_file, "rb") as f:
      d["split_file_sha256"] = hashlib.sha256(f.read()).hexdigest()
  return d


def cache_key(ctx: EvalContext, data_cfg: ml_collections.ConfigDict,
              layers: Sequence[int] | None, pooling: str,
              compute_dtype: str = "float32",
              band_input: BandInput | None = None) -> tuple[str, dict[str, Any]]:
  what = {"version": CACHE_VERSION, "checkpoint": checkpoint_identity(ctx),
          "data": data_identity(data_cfg), "layers": None if layers is None else list(layers),
          "pooling": pooling, "compute_dtype": compute_dtype}
  ident = band_input.identity() if band_input is not None else None
  if ident is not None:  # the plain 12-band input keeps its earlier keys
    what["band_input"] = ident
  text = json.dumps(what, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:24], what


class FeatureCache:
  """Features per (checkpoint, data, layers, pooling, compute dtype, band input); the encoder
  is loaded on first miss.

  `extracted` counts extractions done by this object (tests, logs).
  """

  def __init__(self, ctx: EvalContext):
    self.ctx, self.extracted, self._enc, self._fns = ctx, 0, None, {}

  def encoder(self) -> SpectralGPT:
    if self._enc is None:
      self._enc = load_encoder(self.ctx)
    return self._enc

  def get(self, data_cfg: ml_collections.ConfigDict, *, layers: Sequence[int] | None = None,
          pooling: str = "mean", compute_dtype: str = "float32",
          band_input: BandInput | None = None) -> FeatureSet:
    band_input = band_input or band_input_lib.parse("")
    key, what = cache_key(self.ctx, data_cfg, layers, pooling, compute_dtype, band_input)
    path = os.path.join(self.ctx.cache_dir, f"{key}.npz") if self.ctx.cache_dir else ""
    if path and storage.exists(path):
      with np.load(io.BytesIO(storage.read_bytes(path))) as z:
        logging.info("features from cache %s", path)
        return FeatureSet(z["features"], z["labels"], z["ids"].astype(str))
    if self.ctx.pretrained == BAND_STATS:
      if not band_input.full:
        raise ValueError("band_stats features take the 12 SpectralGPT bands; bands/"
                         "spectral_mode select an encoder's input")
      from spectralgpt_jax.evaluation import band_stats  # pylint: disable=g-import-not-at-top
      fs = band_stats.extract(data_cfg)
    else:
      enc = band_input_lib.encoder_for(self.encoder(), band_input)
      fkey = (None if layers is None else tuple(layers), pooling, compute_dtype, band_input)
      if fkey not in self._fns:
        kwargs = band_input.model_kwargs()
        self._fns[fkey] = feature_fn(enc, layers, pooling, compute_dtype, kwargs)
      fs = extract_features(enc, data_cfg, layers=layers, pooling=pooling,
                            compute_dtype=compute_dtype, fn=self._fns[fkey],
                            band_input=band_input)
    self.extracted += 1
    if path and jax.process_index() == 0:
      atomic_write(path, lambda f: np.savez(f, features=fs.features, labels=fs.labels,
                                            ids=fs.ids))
      atomic_write(path[:-4] + ".json", lambda f: f.write(
          json.dumps(what, indent=1, sort_keys=True, default=str).encode()))
      logging.info("features of %d examples cached in %s", len(fs.ids), path)
    return fs
