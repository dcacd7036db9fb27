"""`SpectralGPT` (a loaded model: embed, features, reconstruct) and `load(path)`.

See the package docstring (`spectralgpt_jax.inference`) for the input conventions.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from data_pipelines.normalization import normalize_cube
from data_pipelines import schema, storage
from data_pipelines.schema import SPECTRALGPT_BANDS
from spectralgpt_jax import checkpoints, losses, models
from spectralgpt_jax.export import from_torch
from spectralgpt_jax.inference import dense as inference_dense, inputs
from spectralgpt_jax.kernels import select
from spectralgpt_jax.models.mae import band_plan, token_grid
from spectralgpt_jax.models.patch_embed import fold_dates, patchify, unpatchify
from spectralgpt_jax.models.shapes import input_bands, param_shapes
from spectralgpt_jax.models.transformer import to_unrolled


def _check_params(model: nn.Module, params: Mapping, where: str) -> None:
  """Raises ValueError naming the param paths that differ from what `model` expects."""
  flat = lambda t: {k: tuple(v.shape)
                    for k, v in traverse_util.flatten_dict(dict(t), sep="/").items()}
  got, exp = flat(params), flat(param_shapes(model))
  bad = sorted(k for k in set(got) & set(exp) if got[k] != exp[k])
  if set(got) != set(exp) or bad:
    raise ValueError(f"{where}: params do not fit {model.spec.kind} model; missing "
                     f"{sorted(set(exp) - set(got))}; unexpected {sorted(set(got) - set(exp))}; "
                     f"shape mismatches {[f'{k}: {got[k]} != {exp[k]}' for k in bad]}")


COMPUTE_DTYPES = ("float32", "bfloat16")


def encoder_tokens(model: nn.Module, params: Mapping, x: jax.Array, **apply_kw):
  """The model's token features [B, L, D] for a cube batch, every token kept.

  MAE: `encode` with mask ratio 0 and noise 0..L-1 (the identity order: tokens stay in grid
  order), i.e. the encoder output after its final norm; ViT: `features` (after the last block);
  segmenter / change detector: the encoder's last block (no norm), one date.
  `apply_kw` goes to `model.apply` (e.g. capture_intermediates, mutable); with `mutable` the
  result is (output, state) as flax returns it, the MAE output being (latent, mask info).
  `wavelengths`, `fwhm`, `drop_groups` in apply_kw describe another band set (docs/sensors.md).
  """
  if model.spec.kind == "mae":
    plan = band_plan(model.spec, apply_kw.get("wavelengths"), apply_kw.get("fwhm"))
    n = token_grid(model.spec, x.shape, plan)
    length = n[0] * n[1] * n[2]
    noise = jnp.broadcast_to(jnp.arange(length, dtype=jnp.float32), (x.shape[0], length))
    out = model.apply({"params": params}, x, noise, 0.0, method="encode", **apply_kw)
    return out if apply_kw.get("mutable") else out[0]
  if model.spec.kind in inference_dense.DENSE_KINDS and not apply_kw:
    return model.apply({"params": params}, x, method="encode")[0]
  return model.apply({"params": params}, x, method="features", **apply_kw)


class SpectralGPT:
  """A loaded model with its params, band list and normalization (see the package docstring).

  Attributes:
    model: the Flax module (SpectralMAE, SpectralViT or SpectralSegmenter), unrolled, float32.
    params: its params (on the default device).
    kind: "mae", "vit", "seg" or "change" (model.spec.kind).
    meta: {"model", "bands", "normalization", "config", ...} from the checkpoint or manifest;
      dense models also {"task", "classes", "num_classes", "output", "tile": {"size",
      "stride", "num_dates", "minmax_scope"}} (export.dense_export.dense_protocol).
    source: where the weights came from.
  """

  def __init__(self, model: nn.Module, params: Mapping, meta: Mapping[str, Any], source: str):
    self.model, self.meta, self.source = model, dict(meta), source
    self.params = jax.device_put(jax.tree.map(np.asarray, dict(params)))

  @property
  def spec(self):
    return self.model.spec

  @property
  def kind(self) -> str:
    return self.spec.kind

  @property
  def bands(self) -> tuple[str, ...]:
    return tuple(self.meta.get("bands") or SPECTRALGPT_BANDS)

  @property
  def normalization(self) -> dict[str, Any] | None:
    return self.meta.get("normalization")

  def __repr__(self) -> str:
    return (f"SpectralGPT({self.meta.get('model')}, bands={list(self.bands)}, "
            f"source={self.source!r})")

  def prepare(self, x: np.ndarray, *, bands: Sequence[str] | str | None = None,
              normalize: bool = True, units: str = "DN", nonfinite: str = "error",
              image_size: int | None = None, resampling: str = "bicubic") -> np.ndarray:
    """Input cube(s) -> float32 [B, C, S, S] (a series [B, T, C, S, S] for a model with
    num_dates > 1) in model band order, resized and normalized as the model expects.

    Args:
      x: [C, H, W] or [B, C, H, W] (series: [T, C, H, W] or [B, T, C, H, W]).
      bands: names of x's planes (checked and reordered by name); None: the model's order.
      normalize: apply the stored normalization to raw values in `units` (default). Pass
        False for input that is already normalized; raw-looking values then warn.
      units: "DN" (reflectance x 10000) or "reflectance".
      nonfinite: "error" (ValueError naming example, band and position) or "zero" (such
        pixels are 0 after normalization: the band mean for z-score statistics; when resizing,
        they enter the interpolation as their band's mean, and the output pixels whose nearest
        input pixel was non-finite are set to 0).
      image_size: side S the input is resized to (default: the model's `spec.img_size`, its
        pretraining size); another multiple of the patch size runs the model at that size.
      resampling: "bicubic" (default, antialiased), "bilinear" or "nearest".
    """
    if nonfinite not in ("error", "zero"):
      raise ValueError(f"nonfinite={nonfinite!r}: use 'error' or 'zero'")
    size = self._image_size(image_size)
    x = self._select_bands(self._batch(x), bands)
    x = np.asarray(x, np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
      if nonfinite == "error":
        raise ValueError(_nonfinite_message(x, bad, self.bands))
      x, bad = _fill_nonfinite(x, bad), inputs.fit_to_size(bad, size, "nearest") > 0
    x = inputs.fit_to_size(x, size, resampling)
    inputs.check_value_range(x, normalize=normalize, units=units,
                             normalization=self.normalization, stacklevel=4)
    x = normalize_cube(x, self.bands, self.normalization, units=units) if normalize else x
    if bad.any():
      x = np.where(bad, np.float32(0), x)
    return x

  def _image_size(self, image_size: int | None) -> int:
    size = self.spec.img_size if image_size is None else int(image_size)
    if size <= 0 or size % self.spec.patch:
      raise ValueError(f"image_size={image_size}: must be a positive multiple of the patch "
                       f"size {self.spec.patch} (the model's is {self.spec.img_size})")
    return size

  def _batch(self, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    dated = self.spec.num_dates > 1
    if x.ndim == (4 if dated else 3):
      x = x[None]
    if x.ndim != (5 if dated else 4):
      want = "a series [T, C, H, W] or a batch [B, T, C, H, W]" if dated else \
          "a cube [C, H, W] or a batch [B, C, H, W]"
      raise ValueError(f"expected {want}, got {x.shape}")
    return x

  def _select_bands(self, x: np.ndarray, bands: Sequence[str] | str | None) -> np.ndarray:
    axis = x.ndim - 3  # bands
    if bands is None:
      if x.shape[axis] != len(self.bands):
        raise ValueError(f"input has {x.shape[axis]} bands; the model expects "
                         f"{len(self.bands)} ({list(self.bands)}); pass bands= to select them "
                         "by name")
      return x
    names = schema.parse_band_list(bands)
    want = [schema.normalize_band_name(b) for b in self.bands]
    if len(names) != x.shape[axis]:
      raise ValueError(f"input has {x.shape[axis]} bands but {len(names)} names were given")
    missing = [b for b in want if b not in names]
    if missing:
      raise ValueError(f"input lacks bands {missing} that the model expects (its manifest "
                       f"lists {list(self.bands)}; input has {list(names)})")
    return schema.select_bands(x, names, want, axis=axis)

  def compute_model(self, compute_dtype: str = "float32") -> nn.Module:
    """The model with its matmuls in `compute_dtype` (COMPUTE_DTYPES); params stay float32.

    "bfloat16": Dense and attention matmuls take bf16 operands and accumulate in float32;
    LayerNorm, softmax, GELU and the residual stream stay float32 (models/dense_layer.py)."""
    if compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got {compute_dtype!r}")
    if compute_dtype == "float32":
      return self.model
    runtime = self.model.runtime.replace(dtype=jnp.dtype(compute_dtype))
    return self.model.clone(runtime=runtime)

  def _fns(self, compute_dtype: str) -> dict[str, Any]:
    cache = self.__dict__.setdefault("_fn_cache", {})
    if compute_dtype not in cache:
      m = self.compute_model(compute_dtype)
      feats = lambda p, x: encoder_tokens(m, p, x)
      if self.kind != "vit":
        pooled = lambda p, x: feats(p, x).mean(axis=1)
      else:
        pooled = lambda p, x: m.apply({"params": p}, x, method="pooled")
      cache[compute_dtype] = {"features": jax.jit(feats), "pooled": jax.jit(pooled)}
    return cache[compute_dtype]

  def _batched(self, fn, x: np.ndarray, batch_size: int) -> np.ndarray:
    """fn over x in batches, float32; batch i+1 is dispatched before batch i is read back, so
    the host does not leave the device idle between batches (jax dispatches asynchronously)."""
    outs, pending = [], None
    for i in range(0, x.shape[0], batch_size):
      out = fn(self.params, x[i:i + batch_size])
      if pending is not None:
        outs.append(np.asarray(pending, np.float32))
      pending = out
    outs.append(np.asarray(pending, np.float32))
    return np.concatenate(outs, axis=0)

  def features(self, x: np.ndarray, *, bands=None, normalize: bool = True,
               units: str = "DN", image_size: int | None = None, resampling: str = "bicubic",
               batch_size: int = 16, nonfinite: str = "error",
               compute_dtype: str = "float32") -> np.ndarray:
    """Patch-token features [B, L, D] float32 (no masking); the other arguments as in
    `prepare`; `compute_dtype` as in `compute_model` (docs/evaluation.md: what bfloat16 costs)."""
    x = self.prepare(x, bands=bands, normalize=normalize, units=units, nonfinite=nonfinite,
                     image_size=image_size, resampling=resampling)
    return self._batched(self._fns(compute_dtype)["features"], x, batch_size)

  def embed(self, x: np.ndarray, *, bands=None, normalize: bool = True, units: str = "DN",
            image_size: int | None = None, resampling: str = "bicubic", batch_size: int = 16,
            nonfinite: str = "error", compute_dtype: str = "float32") -> np.ndarray:
    """Pooled embeddings [B, D] float32 (no masking); the other arguments as in `prepare`;
    `compute_dtype` as in `compute_model`."""
    x = self.prepare(x, bands=bands, normalize=normalize, units=units, nonfinite=nonfinite,
                     image_size=image_size, resampling=resampling)
    return self._batched(self._fns(compute_dtype)["pooled"], x, batch_size)

  def _cached(self, name: str, compute_dtype: str, make) -> Any:
    cache = self.__dict__.setdefault("_call_cache", {})
    if (name, compute_dtype) not in cache:
      cache[(name, compute_dtype)] = make(self.compute_model(compute_dtype))
    return cache[(name, compute_dtype)]

  def dense_logits(self, x: np.ndarray, x2: np.ndarray | None = None, *,
                   compute_dtype: str = "float32", batch_size: int = 16) -> np.ndarray:
    """Segmenter / change detector on prepared tiles -> float32 [B, K, H, W].

    x (and x2, the second date of a change detector): float32 [B, C, H, W], normalized, bands
    in the model's order (`self.bands`), H and W multiples of the patch size: the tiles
    dense_eval feeds. Segmenters give logits, change detectors log-probabilities (the official
    LogSoftmax); softmax over axis 1 gives class probabilities either way
    (`dense_probabilities`). `compute_dtype` as in `compute_model`."""
    xs = inference_dense.check_dense_inputs(self.kind, self.spec, x, x2,
                                            planes=input_bands(self.model))
    fn = self._cached("dense", compute_dtype, inference_dense.make_dense_fn)
    return inference_dense.run_batched(fn, self.params, xs, batch_size)

  def dense_probabilities(self, x: np.ndarray, x2: np.ndarray | None = None, *,
                          compute_dtype: str = "float32", batch_size: int = 16) -> np.ndarray:
    """softmax(dense_logits) over classes: float32 [B, K, H, W], what dense_eval scores."""
    logits = self.dense_logits(x, x2, compute_dtype=compute_dtype, batch_size=batch_size)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)

  def class_logits(self, x: np.ndarray, *, compute_dtype: str = "float32",
                   batch_size: int = 16) -> np.ndarray:
    """Classifier logits float32 [B, K] of prepared input [B, C, S, S] (normalized, model band
    order, e.g. from `prepare`); eval mode."""
    if self.kind != "vit":
      raise ValueError(f"class_logits needs classifier (vit) weights; this is a {self.kind} "
                       "model")
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or x.shape[1] != self.spec.num_bands:
      raise ValueError(f"input {x.shape}: expected [B, {self.spec.num_bands}, S, S] (use "
                       "prepare() for raw cubes)")
    fn = self._cached("class", compute_dtype, inference_dense.make_class_fn)
    return inference_dense.run_batched(fn, self.params, [x], batch_size)

  def _recon_fn(self, mask_ratio: float):
    cache = self.__dict__.setdefault("_recon_cache", {})
    if mask_ratio not in cache:
      m = self.model
      cache[mask_ratio] = jax.jit(lambda p, x, noise: m.apply(
          {"params": p}, x, mask_ratio=mask_ratio, noise=noise))
    return cache[mask_ratio]

  def reconstruct(self, x: np.ndarray, *, mask_ratio: float = 0.9,
                  noise: np.ndarray | None = None, seed: int = 0, bands=None,
                  normalize: bool = True, units: str = "DN", image_size: int | None = None,
                  resampling: str = "bicubic", norm_pix: bool = False,
                  batch_size: int = 16) -> dict[str, np.ndarray]:
    """MAE reconstruction with the official masking convention and loss.

    `noise` [B, L] fixes the mask (tokens with the smallest noise are kept, as torch's
    random_masking); otherwise uniform noise from `seed`. Returns loss, loss_mse,
    loss_spectral (over the whole batch), input (the prepared model input [B, C, S, S]:
    band order, size and normalization of `prepare`), pred [B, L, t*p*p], mask [B, L]
    (1 = removed), reconstruction (unpatchified pred, input's shape) and target [B, L, t*p*p].
    The loss is in normalized units, so raw digital numbers need the default normalize=True.
    """
    if self.kind != "mae":
      raise ValueError("reconstruct needs MAE (pretraining) weights; these are a classifier")
    x = self.prepare(x, bands=bands, normalize=normalize, units=units, image_size=image_size,
                     resampling=resampling)
    grid = token_grid(self.spec, x.shape)
    length = grid[0] * grid[1] * grid[2]
    if noise is None:
      noise = np.random.default_rng(seed).uniform(size=(x.shape[0], length))
    noise = np.asarray(noise, np.float32)
    if noise.shape != (x.shape[0], length):
      raise ValueError(f"noise has shape {noise.shape}; expected {(x.shape[0], length)}")
    fn = self._recon_fn(float(mask_ratio))
    preds, masks = [], []
    for i in range(0, x.shape[0], batch_size):
      pred, aux = fn(self.params, x[i:i + batch_size], noise[i:i + batch_size])
      preds.append(np.asarray(pred))
      masks.append(np.asarray(aux["mask"]))
    pred, mask = np.concatenate(preds), np.concatenate(masks)
    s = self.spec
    target = np.asarray(patchify(fold_dates(jnp.asarray(x)), s.t_patch, s.patch))
    loss, terms = losses.spectralgpt_loss(  # as train.tasks.mae: spectral sums within each date
        pred, target, mask, grid, norm_pix=norm_pix,
        groups_per_date=s.spectral_groups if s.num_dates > 1 else None)
    return {"loss": float(loss), "loss_mse": float(terms["loss_mse"]),
            "loss_spectral": float(terms["loss_spectral"]), "input": x, "pred": pred,
            "mask": mask,
            "reconstruction": np.asarray(unpatchify(jnp.asarray(pred), grid, s.t_patch,
                                                    s.patch)).reshape(x.shape),
            "target": target}


def _nonfinite_message(x: np.ndarray, bad: np.ndarray, bands: Sequence[str]) -> str:
  idx = tuple(int(i) for i in np.argwhere(bad)[0])
  b, *dates, c, row, col = idx
  where = f"example {b}" + (f", date {dates[0]}" if dates else "")
  return (f"non-finite input: {int(bad.sum())} NaN/Inf value(s); first at {where}, band "
          f"{bands[c]} (index {c}), position (row {row}, col {col}) = {x[idx]}. Fix the input "
          "or pass nonfinite='zero' to set such values to 0 after normalization")


def _fill_nonfinite(x: np.ndarray, bad: np.ndarray) -> np.ndarray:
  """Non-finite pixels -> their band's finite mean (per example), so resizing stays finite."""
  finite = np.where(bad, 0.0, x)
  count = np.maximum((~bad).sum(axis=(-2, -1), keepdims=True), 1)
  return np.where(bad, finite.sum(axis=(-2, -1), keepdims=True) / count, x).astype(np.float32)


def load(path: str | os.PathLike, *, model: str | None = None, step: int | None = None
         ) -> SpectralGPT:
  """Loads weights for inference.

  Args:
    path: an orbax checkpoint (workdir, its checkpoints/ dir or a step dir), an official
      SpectralGPT `.pth` (with or without a 'model' key), or our `.pth`/`.safetensors` export
      (its manifest `<file>.json` or embedded metadata supplies variant, bands and
      normalization; for dense models also task, classes and tile protocol). Every kind
      loads: MAE, classifier (vit), segmenter (seg), change detector (change).
    model: variant name, overriding what the checkpoint/manifest says or the shapes suggest.
    step: checkpoint step for orbax directories (default: latest).

  The model runs on the first local device with the implementations kernels.select picks for
  it (on CPU the fused attention kernel for long sequences, built once, with a log line).
  """
  if storage.is_url(path):  # a checkpoint folder (orbax reads it) or a weights object
    path = os.fspath(path)
    if not storage.exists(path):
      raise FileNotFoundError(f"{path}: no such checkpoint directory or weights file")
    is_dir, is_file = storage.isdir(path), not storage.isdir(path)
  else:
    path = pathlib.Path(path).expanduser()
    is_dir, is_file = path.is_dir(), path.is_file()
  if is_dir:
    ckpt = checkpoints.read_checkpoint(path, step)
    meta = dict(ckpt.meta)
    record = dict(meta.get("model") or {})
    if model is not None:
      record = {**record, "name": model}
    if "name" not in record:
      raise ValueError(f"{ckpt.path}: the checkpoint meta names no model; pass model=NAME")
    params, source = to_unrolled(dict(ckpt.params)), str(ckpt.path)
    meta["model"], meta["step"] = record, ckpt.step
    run_dir = None if storage.is_url(path) else pathlib.Path(ckpt.path).parents[1]
  elif is_file:
    conv, meta = from_torch.load_weights(path, model=model)
    params, record, source, run_dir = conv.params, conv.record, str(path), None
  else:
    raise FileNotFoundError(f"{path}: no such checkpoint directory or weights file")
  record = {k: tuple(v) if isinstance(v, list) else v for k, v in record.items()}  # JSON lists
  spec = models.build_model(record, runtime=False).spec
  if spec.kind in inference_dense.DENSE_KINDS and "tile" not in meta:
    meta.update(inference_dense.run_protocol(meta, spec, run_dir))
  ops = select.ops_for(jax.local_devices()[:1], max_tokens=spec.num_tokens)
  net = models.build_model(record, runtime=False, ops=ops)
  _check_params(net, params, source)
  return SpectralGPT(net, params, meta, source)
