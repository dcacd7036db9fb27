"""Band subsets and spectral modes in the evaluators (evaluation/band_input.py, the feature
cache, evaluation/change_probe.py) and the sensor sweep config (configs/eval/sensor_sweep.py),
on the real BigEarthNet patches with a random tiny MAE."""

import json
import pathlib

import numpy as np
import pytest
from sklearn.metrics import f1_score

from configs.eval import sensor_sweep
from data_pipelines import pipeline, schema
from eval_data import data_config
from spectralgpt_jax.evaluation import band_input, change_probe, features, registry
from spectralgpt_jax.evaluation.context import EvalContext
from spectralgpt_jax.inference.model import encoder_tokens

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(ben_shards, tmp_path_factory):
  """(ctx, encoder, data config of 3 real patches, their cubes [3, 12, 32, 32])."""
  ctx = EvalContext(workdir=str(tmp_path_factory.mktemp("bands") / "lin"), seed=0,
                    pretrained="", model="mae_vit_tiny_patch8_32", cache_dir="")
  data = data_config(ben_shards[0], batch_size=3)
  batch = next(iter(pipeline.make_iterator(features.eval_data_config(data))))
  return ctx, features.load_encoder(ctx), data, np.asarray(batch["cube"], np.float32)


def test_parse_names_and_refuses_bad_input():
  assert band_input.parse("rgbn", "wavelength").names == ("B02", "B03", "B04", "B08")
  assert band_input.parse("B2,B3,B4", "zero_fill").names == ("B02", "B03", "B04")
  assert band_input.parse("", "s2").full
  with pytest.raises(ValueError, match="B10"):
    band_input.parse("B02,B03,B10", "resample")
  with pytest.raises(ValueError, match="spectral_mode 's2'"):
    band_input.parse("hls", "s2")
  with pytest.raises(ValueError, match="spectral_mode"):
    band_input.parse("hls", "nearest")


def test_modes_are_applied(setup):
  ctx, enc, _, cube = setup
  rgbn = [schema.SPECTRALGPT_BANDS.index(b) for b in ("B02", "B03", "B04", "B08")]
  out = {}
  for mode in ("wavelength", "resample", "zero_fill"):
    bi = band_input.parse("rgbn", mode)
    x, kw = bi.apply(cube)
    net = band_input.encoder_for(enc, bi)
    out[mode] = (x, kw, np.asarray(encoder_tokens(net.model, net.params, x, **kw)))
  # wavelength: B, G, R | N, N, N (remainder padded with the longest band), positions given
  x, kw, tokens = out["wavelength"]
  np.testing.assert_array_equal(x, cube[:, [rgbn[i] for i in (0, 1, 2, 3, 3, 3)]])
  assert len(kw["wavelengths"]) == 6 and tokens.shape[1] == 2 * 16
  # resample: 12 planes, the groups the input does not cover dropped (no tokens), never 0-fed
  x, kw, tokens = out["resample"]
  assert x.shape[1] == 12 and kw["drop_groups"]
  assert tokens.shape[1] == (4 - len(kw["drop_groups"])) * 16
  # zero_fill: 12 planes, the four bands in their slots, every other plane 0, all tokens
  x, kw, tokens = out["zero_fill"]
  want = np.zeros_like(cube)
  want[:, rgbn] = cube[:, rgbn]
  np.testing.assert_array_equal(x, want)
  assert kw == {} and tokens.shape[1] == 4 * 16
  assert not np.allclose(out["wavelength"][2].mean(1), out["zero_fill"][2].mean(1), atol=1e-3)


def test_wavelength_twin_is_exact_on_s2(setup):
  _, enc, _, cube = setup
  twin = band_input.encoder_for(enc, band_input.parse("B02,B03,B04", "wavelength"))
  assert twin.spec.spectral_positions == "wavelength"
  x, kw = band_input.parse("s2", "wavelength").apply(cube)   # all 12 bands, S2 wavelengths
  a = np.asarray(encoder_tokens(enc.model, enc.params, cube))
  b = np.asarray(encoder_tokens(twin.model, twin.params, x, **kw))
  np.testing.assert_array_equal(a, b)


def test_cache_key_and_features_follow_the_band_input(setup):
  ctx, _, data, _ = setup
  plain = features.cache_key(ctx, data, None, "mean")[0]
  assert features.cache_key(ctx, data, None, "mean", "float32", band_input.parse(""))[0] == plain
  keys = {features.cache_key(ctx, data, None, "mean", "float32",
                             band_input.parse(b, m))[0]
          for b in ("hls", "rgbn") for m in ("wavelength", "resample", "zero_fill")}
  assert len(keys) == 6 and plain not in keys


@pytest.mark.slow
def test_one_sweep_point_runs(tmp_path):
  """One point of the sweep config end to end (random tiny encoder, real EuroSAT and OSCD)."""
  from spectralgpt_jax.evaluation import runner  # pylint: disable=g-import-not-at-top
  c = sensor_sweep.get_config(f"shared={REPO.parent / 'shared'},crops=2")
  c.update_from_flattened_dict({"pretrained": "", "bands": "rgbn", "spectral_mode": "resample"})
  out = runner.run_evals(c, str(tmp_path / "point"))
  assert 0 <= out["eurosat_linear/accuracy"] <= 1 and 0 <= out["oscd_change/f1"] <= 1
  info = json.loads((tmp_path / "point" / "oscd_change" / "metrics.json").read_text())["info"]
  assert info["spectral_mode"] == "resample" and info["drop_groups"]


def test_change_probe_helpers_against_sklearn():
  rng = np.random.default_rng(0)
  assert change_probe.tile_corners((100, 70), 32) == [
      (r, c) for r in (0, 32, 64, 68) for c in (0, 32, 38)]
  scores, frac = rng.random(40), rng.integers(0, 5, 40) / 4.0   # 4 pixels per patch
  t = change_probe.best_threshold(scores, frac, 4)
  truth = np.concatenate([[1] * int(f * 4) + [0] * (4 - int(f * 4)) for f in frac])
  f1 = lambda th: f1_score(truth, np.repeat(scores >= th, 4))
  assert f1(t) == pytest.approx(max(f1(th) for th in change_probe.THRESHOLDS))


def test_sweep_config_points_build():
  points = sensor_sweep.get_sweep()
  assert len(points) == 30
  modes = {(p["bands"], p["spectral_mode"]) for p in points}
  assert ("s2", "s2") in modes and ("rgbn", "resample") in modes and len(modes) == 10
  for p in points[::3]:
    c = sensor_sweep.get_config()
    c.update_from_flattened_dict(p)
    for name, block in c.evals.items():
      ctx = EvalContext(workdir=f"/tmp/{name}", seed=p["seed"], pretrained="", model=c.model,
                        cache_dir="")
      ev = registry.build(name, block, ctx)
      assert (ev.band_input.names, ev.band_input.mode) == (
          band_input.SUBSETS[p["bands"]], p["spectral_mode"])
