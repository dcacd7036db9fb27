"""What bfloat16 extraction (`compute_dtype`) costs against float32, on the six real BigEarthNet
patches: feature agreement and the linear / k-NN metrics of the tiny multi-label task."""

import dataclasses

import numpy as np
import pytest

from spectralgpt_jax import evaluation
from spectralgpt_jax.evaluation import features
from spectralgpt_jax.evaluation.context import EvalContext

from eval_data import data_config

# Measured here (tiny MAE, seed 0, 32 px): worst cosine 0.999994, relative error 0.0034 (final
# output; blocks 0 and -1 alike; base at 128 px 0.0048); probe metrics unchanged (differences
# 0.0). The bounds are the documented ones: features within 0.5% of float32, probe metrics
# unchanged (README, docs/evaluation.md).
MIN_COSINE, MAX_REL_ERROR, MAX_METRIC_DIFF = 0.9995, 0.005, 0.0


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
  """(worst per-row cosine similarity, relative Frobenius error) of b against a."""
  cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
  return float(cos.min()), float(np.linalg.norm(b - a) / np.linalg.norm(a))


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
  ctx = EvalContext(str(tmp_path_factory.mktemp("enc")), 0, "", "mae_vit_tiny_patch8_32", "")
  return features.load_encoder(ctx)


@pytest.mark.parametrize("layers", [None, (0, -1)])
def test_bf16_features_agree_with_f32_on_real_patches(encoder, ben_shards, layers):
  fns = {d: features.feature_fn(encoder, layers, "mean", d) for d in ("float32", "bfloat16")}
  for shard in ben_shards:
    f32, bf16 = (features.extract_features(encoder, data_config(shard), fn=fns[d])
                 for d in ("float32", "bfloat16"))
    np.testing.assert_array_equal(bf16.ids, f32.ids)
    cos, rel = agreement(f32.features, bf16.features)
    print(f"layers {layers} {shard}: cosine {cos:.6f}, relative error {rel:.4f}")
    assert cos >= MIN_COSINE and rel <= MAX_REL_ERROR, (cos, rel)
    assert rel > 0  # bf16 really ran: the features differ


def test_bf16_probe_metrics_match_f32(make_eval_config, tmp_path):
  out = {}
  for dtype in ("float32", "bfloat16"):
    config = make_eval_config()
    config.evals.nn.layers, config.evals.nn.pooling = None, "mean"  # both share features
    for name in ("lin", "nn"):
      config.evals[name].compute_dtype = dtype
    out[dtype] = evaluation.run_evals(config, str(tmp_path / dtype))
  keys = [f"{e}/{m}" for e in ("lin", "nn") for m in ("micro_map", "macro_map", "micro_f1")]
  diffs = {k: abs(out["bfloat16"][k] - out["float32"][k]) for k in keys}
  print("metric differences bf16 - f32:", diffs)
  assert max(diffs.values()) <= MAX_METRIC_DIFF, diffs
  assert len(list((tmp_path / "feature_cache").glob("*.npz"))) == 4  # dtype is in the key


def test_unknown_compute_dtype_names_the_field(make_eval_config, tmp_path):
  config = make_eval_config()
  config.evals.lin.compute_dtype = "float16"
  with pytest.raises(ValueError, match=r"config.evals.lin.compute_dtype must be one of"):
    evaluation.run_evals(config, str(tmp_path / "run"))


def test_inference_embed_compute_dtype(encoder):
  x = np.random.default_rng(0).uniform(size=(3, 12, 32, 32)).astype(np.float32)  # normalized
  f32 = encoder.embed(x, batch_size=2, normalize=False)
  bf16 = encoder.embed(x, batch_size=2, compute_dtype="bfloat16", normalize=False)
  assert bf16.dtype == np.float32 and bf16.shape == f32.shape
  cos, rel = agreement(f32, bf16)
  assert cos >= MIN_COSINE and 0 < rel <= MAX_REL_ERROR, (cos, rel)
  with pytest.raises(ValueError, match="compute_dtype must be one of"):
    encoder.features(x, normalize=False, compute_dtype="float16")
  # the model itself is untouched: float32 again gives the float32 result
  np.testing.assert_array_equal(encoder.embed(x, batch_size=2, normalize=False), f32)
  assert dataclasses.asdict(encoder.spec) == dataclasses.asdict(encoder.model.spec)


def data_128(shard: str):
  cfg = data_config(shard, batch_size=3)
  cfg.image_size = 128
  return cfg


@pytest.mark.slow
def test_bf16_base_model_features_on_real_patches(ben_shards, tmp_path):
  """The base MAE at 128 px (random init: no pretrained weights here) on the six patches."""
  ctx = EvalContext(str(tmp_path), 0, "", "mae_vit_base_patch8_128", "")
  enc = features.load_encoder(ctx)
  for layers in (None, (3, 5, 7, 11)):
    fns = {d: features.feature_fn(enc, layers, "mean", d) for d in ("float32", "bfloat16")}
    got = {d: np.concatenate([features.extract_features(enc, data_128(s), fn=fn).features
                              for s in ben_shards]) for d, fn in fns.items()}
    cos, rel = agreement(got["float32"], got["bfloat16"])
    print(f"base, layers {layers}: cosine {cos:.6f}, relative error {rel:.4f}")
    assert cos >= MIN_COSINE and 0 < rel <= MAX_REL_ERROR, (cos, rel)
