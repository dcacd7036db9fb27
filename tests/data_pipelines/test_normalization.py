"""normalize_cube (inference's view: a stored normalization record) equals the pipeline's
Normalize on the real patches, in every mode; records, aliases, units, dates, errors."""

import numpy as np
import pytest

pytest.importorskip("rasterio")

from data_pipelines import bigearthnet, config, normalization, schema  # noqa: E402
from data_pipelines import transforms as T  # noqa: E402


@pytest.fixture(scope="module")
def patches(example_dir):
  """[6, 12, 120, 120] float32 DN of the real patches (SpectralGPT band order)."""
  cubes = []
  for folder in bigearthnet.list_bigearthnet_patches(example_dir):
    cube, meta = bigearthnet.read_bigearthnet_patch(folder)
    cubes.append(schema.select_bands(cube, meta["bands"], schema.SPECTRALGPT_BANDS))
  return np.stack(cubes).astype(np.float32)


def _cfg(mode, stats="eurosat_official", quantize=True):
  c = config.default_data_config()
  c.normalization, c.stats, c.sentinel_clip_quantize = mode, stats, quantize
  return c


CASES = [("minmax", "eurosat_official", True), ("none", "eurosat_official", True),
         ("zscore", "eurosat_official", True), ("sentinel_clip", "fmow_s2_official", True),
         ("sentinel_clip", "fmow_s2_official", False)]


@pytest.mark.parametrize("mode,stats,quantize", CASES)
def test_normalize_cube_equals_pipeline_normalize(patches, mode, stats, quantize):
  bands = schema.SPECTRALGPT_BANDS
  record = normalization.norm_record(_cfg(mode, stats, quantize))
  mean = std = None
  if mode in ("zscore", "sentinel_clip"):
    mean, std = record["mean"], record["std"]
    assert record["units"] == "DN" and len(mean) == 12
  norm = T.Normalize(mode, mean, std, 1e-12, quantize)
  for cube in patches:
    np.testing.assert_array_equal(normalization.normalize_cube(cube, bands, record),
                                  norm.map({"cube": cube})["cube"])
  # A batch and a series of dates are normalized image by image, date by date.
  batch = normalization.normalize_cube(patches[:2], bands, record)
  np.testing.assert_array_equal(batch[1], norm.map({"cube": patches[1]})["cube"])


def test_record_forms_units_and_aliases(patches):
  bands = schema.SPECTRALGPT_BANDS
  cube = patches[0]
  full = normalization.norm_record(_cfg("sentinel_clip", "fmow_s2_official"))
  ref = normalization.normalize_cube(cube, bands, full)
  by_name = {"method": "sentinel_normalize", "stats": "fmow_s2_official"}   # no numbers stored
  np.testing.assert_array_equal(normalization.normalize_cube(cube, bands, by_name), ref)
  # Stored statistics in another band order are reordered by name.
  order = list(reversed(bands))
  idx = schema.band_indices(bands, order)
  shuffled = dict(full, bands=order, mean=[full["mean"][i] for i in idx],
                  std=[full["std"][i] for i in idx])
  np.testing.assert_array_equal(normalization.normalize_cube(cube, bands, shuffled), ref)
  # Reflectance inputs are scaled to the statistics' DN.
  z = normalization.norm_record(_cfg("zscore"))
  np.testing.assert_allclose(
      normalization.normalize_cube(cube / schema.QUANTIFICATION_VALUE, bands, z,
                                   units="reflectance"),
      normalization.normalize_cube(cube, bands, z), atol=1e-4)
  # Only mean/std stored: zscore.
  plain = {"mean": z["mean"], "std": z["std"]}
  np.testing.assert_array_equal(normalization.normalize_cube(cube, bands, plain),
                                normalization.normalize_cube(cube, bands, z))


def test_normalize_cube_errors(patches):
  bands = schema.SPECTRALGPT_BANDS
  with pytest.raises(ValueError, match="store no normalization"):
    normalization.normalize_cube(patches[0], bands, None)
  with pytest.raises(ValueError, match="units must be one of"):
    normalization.normalize_cube(patches[0], bands, {"mode": "minmax"}, units="radiance")
  with pytest.raises(ValueError, match="unknown normalization mode"):
    normalization.normalize_cube(patches[0], bands, {"mode": "robust"})
  with pytest.raises(ValueError, match="neither these nor a known statistics name"):
    normalization.normalize_cube(patches[0], bands, {"mode": "zscore", "stats": "manifest"})


def test_stats_resolver_and_record():
  mean, std, units = normalization.resolve_stats("eurosat_official", ("B8A", "B02"))
  assert units == "DN" and mean.dtype == np.float32 and mean[0] == pytest.approx(1805.06846033)
  with pytest.raises(ValueError, match="needs a shard directory"):
    normalization.resolve_stats("manifest", ("B02",))
  with pytest.raises(KeyError, match="unknown normalization statistics"):
    normalization.resolve_stats("imagenet", ("B02",))
  assert normalization.norm_record(_cfg("minmax")) == {"mode": "minmax", "image_size": 128,
                                                       "eps": 1e-12}
