"""Parameter counts by arithmetic equal the built modules' (and the official numbers), and the
`models` command prints them without building or initialising a model."""

import flax.linen as nn
import pytest

from spectralgpt_jax import models
from spectralgpt_jax.cli import models as models_cli
from spectralgpt_jax.models import VARIANTS, get_model, param_count, shapes, wavelengths

# The official factories' counts (also in the README): (all, encoder).
OFFICIAL = {
    "mae_vit_base_patch8_96": (98_496_960, 85_317_888),
    "mae_vit_base_patch8_128": (98_640_320, 85_403_904),
    "mae_vit_base_patch8_2tensor_128": (98_560_896, 85_356_288),
    "mae_vit_large_patch8_96": (315_970_752, 302_660_608),
    "mae_vit_large_patch8_128": (316_142_784, 302_775_296),
    "mae_vit_huge_patch8_96": (643_558_336, 630_117_120),
    "mae_vit_huge_patch8_128": (643_759_040, 630_260_480),
    "vit_base_patch8": (85_325_578, 85_325_578),
    "vit_huge_patch8_128": (631_006_730, 631_006_730),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_counts_of_the_official_variants(name):
  assert param_count.count_params(VARIANTS[name]) == OFFICIAL[name]


@pytest.mark.parametrize("name, kwargs", [
    ("mae_vit_tiny_patch8_32", {}),
    ("mae_vit_tiny_patch8_32", {"img_size": 48, "num_dates": 3}),
    ("mae_vit_tiny_patch8_32", {"spectral_positions": "wavelength"}),
    ("vit_tiny_patch8_32", {"spectral_positions": "wavelength"}),
    ("vit_tiny_patch8_32", {"num_classes": 7, "num_bands": 6}),
    ("vit_tiny_patch8_32", {"num_dates": 2, "pos_embed": "official_zeros"}),
    ("seg_vit_tiny_patch8_32", {"num_classes": 5}),
    ("cd_vit_tiny_patch8_32", {}),
])
def test_counts_equal_the_built_modules(name, kwargs):
  model = get_model(name, **kwargs)
  params = shapes.param_shapes(model)
  layout = "single" if kwargs.get("pos_embed") == "official_zeros" else "separable"
  assert param_count.count_params(model.spec, pos_embed=layout) == (
      shapes.count(params), shapes.encoder_count(params))


def test_wavelength_dense_model_counts_its_band_sets_groups_and_residual():
  from data_pipelines import sensors  # pylint: disable=g-import-not-at-top
  bands = sensors.lookup("sentinel2", "B01,B02,B03,B04,B8A,B11,B12")   # Landsat-like
  centres, fwhm = sensors.model_wavelengths([bands[i] for i in sensors.group_bands(bands)])
  for name in ("seg_vit_tiny_patch8_32", "cd_vit_tiny_patch8_32"):
    model = get_model(name, spectral_positions="wavelength", wavelengths=centres, fwhm=fwhm)
    params = shapes.param_shapes(model)
    assert params["fc"]["kernel"].shape == (3, 1)
    assert param_count.count_params(model.spec, groups=3) == (
        shapes.count(params), shapes.encoder_count(params))
  table = param_count.count_params(get_model("cd_vit_tiny_patch8_32").spec)
  assert param_count.count_params(model.spec, groups=3)[0] - table[0] == (
      (wavelengths.NUM_FEATURES + 1) * model.spec.embed_dim - 1)   # residual in, one fc row out


def test_models_command_builds_nothing(monkeypatch, capsys):
  def refuse(*a, **k):
    raise AssertionError("the models command must not build or initialise a model")
  monkeypatch.setattr(models, "get_model", refuse)
  monkeypatch.setattr(shapes, "param_shapes", refuse)
  monkeypatch.setattr(nn.Module, "init", refuse)
  assert models_cli.main([]) == 0
  out = capsys.readouterr().out
  assert "mae_vit_huge_patch8_128" in out and "643,759,040" in out and "630,260,480" in out
  assert len([l for l in out.splitlines() if l.split() and l.split()[0] in VARIANTS]) == len(
      VARIANTS)
