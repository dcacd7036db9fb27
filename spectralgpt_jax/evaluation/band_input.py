"""Evaluating an encoder on another sensor's band set: a band subset and a spectral mode.

The evaluators' fields `bands` and `spectral_mode` (base.py, change_probe.py) name them:
  bands: "" or "s2" = the 12 SpectralGPT bands; a name of SUBSETS; or a comma list of
    Sentinel-2 band names. The planes are taken from the Sentinel-2 input by name and keep
    their Sentinel-2 wavelengths (the pixels are Sentinel-2's: the subset has a target
    sensor's band list, not its responses or its radiometry).
  spectral_mode: how the subset reaches the model (data_pipelines.spectral_resample):
    "s2" (the full band set only), "wavelength" (wavelength-aware positions; an encoder with
    table positions runs as its wavelength-position twin with zero residuals, which is exact
    on Sentinel-2 input), "resample" (onto the 12 S2 bands, groups without cover dropped as
    masked tokens), "zero_fill" (missing S2 bands set to 0, as the benchmark harnesses do).
Both go into the feature cache key (features.cache_key).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
from flax import traverse_util

from data_pipelines import schema
from data_pipelines import sensors
from data_pipelines import spectral_resample
from spectralgpt_jax.inference import SpectralGPT
from spectralgpt_jax.models.shapes import param_shapes

# Band lists of target sensors, taken from the Sentinel-2 bands that match them.
SUBSETS = {
    "s2": tuple(schema.SPECTRALGPT_BANDS),
    # Landsat 8/9 OLI B1-B7 (coastal, blue, green, red, NIR, SWIR1, SWIR2).
    "landsat": ("B01", "B02", "B03", "B04", "B8A", "B11", "B12"),
    # HLS's six bands common to S30 and L30 as geospatial models take them (blue, green, red,
    # narrow NIR, SWIR1, SWIR2).
    "hls": ("B02", "B03", "B04", "B8A", "B11", "B12"),
    # 4-band RGBN (PlanetScope-like / aerial).
    "rgbn": ("B02", "B03", "B04", "B08"),
}


@dataclasses.dataclass(frozen=True)
class BandInput:
  """Sentinel-2 band names of the input (SpectralGPT names) and the spectral mode."""

  names: tuple[str, ...]
  mode: str

  @property
  def full(self) -> bool:
    """True for the plain 12-band Sentinel-2 input (nothing to do)."""
    return self.mode == "s2"

  def identity(self) -> dict[str, Any] | None:
    """What the feature cache key records (None for the plain input: keys stay as before)."""
    return None if self.full else {"bands": list(self.names), "spectral_mode": self.mode}

  def apply(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """x [B, 12, H, W] in SpectralGPT band order -> (model input, keyword arguments of the
    model call: wavelengths, fwhm, drop_groups as the mode needs)."""
    if self.full:
      return x, {}
    idx = [schema.SPECTRALGPT_BANDS.index(n) for n in self.names]
    bands = sensors.lookup("sentinel2_l2a", self.names)
    prep = spectral_resample.prepare(np.asarray(x)[:, idx], bands, self.mode)
    return np.ascontiguousarray(prep.cube, np.float32), prep.model_kwargs()


  def model_kwargs(self) -> dict[str, Any]:
    """The keyword arguments `apply` gives for any cube (they depend on the bands only)."""
    return self.apply(np.zeros((1, len(schema.SPECTRALGPT_BANDS), 1, 1), np.float32))[1]


def parse(bands: str | Sequence[str] | None, spectral_mode: str = "s2") -> BandInput:
  """The BandInput of an evaluator's fields; ValueError naming the band or mode."""
  mode = str(spectral_mode or "s2")
  if mode not in spectral_resample.MODES:
    raise ValueError(f"spectral_mode {mode!r}; use one of {spectral_resample.MODES}")
  if isinstance(bands, str) and bands.strip().lower() in ("", *SUBSETS):
    names = SUBSETS[bands.strip().lower() or "s2"]
  else:
    names = tuple(schema.normalize_band_name(b) for b in schema.parse_band_list(bands))
  for n in names:
    if n not in schema.SPECTRALGPT_BANDS:
      raise ValueError(f"band {n!r} is not one of the SpectralGPT bands "
                       f"{list(schema.SPECTRALGPT_BANDS)} the input is read with")
  if len(set(names)) != len(names):
    raise ValueError(f"bands {list(names)} name a band twice")
  if mode == "s2" and names != tuple(schema.SPECTRALGPT_BANDS):
    raise ValueError(f"spectral_mode 's2' takes the 12 SpectralGPT bands, bands is "
                     f"{list(names)}; pick wavelength, resample or zero_fill")
  return BandInput(tuple(names), mode)


def encoder_for(enc: SpectralGPT, bi: BandInput) -> SpectralGPT:
  """The encoder that takes `bi`'s input: `enc` itself, or for the wavelength mode and a
  table-position encoder, the same weights in a wavelength-position model whose residuals
  are zero (outputs on Sentinel-2 input unchanged; models/wavelengths.py)."""
  if bi.mode != "wavelength" or enc.spec.spectral_positions == "wavelength":
    return enc
  spec = dataclasses.replace(enc.spec, spectral_positions="wavelength")
  net = enc.model.clone(spec=spec)
  params = traverse_util.flatten_dict(dict(enc.params))
  for path, shape in traverse_util.flatten_dict(dict(param_shapes(net))).items():
    if path not in params:
      if "spectral_residual" not in "/".join(path):
        raise ValueError(f"{enc.source}: the wavelength-position model lacks param "
                         f"{'/'.join(path)}")
      params[path] = np.zeros(shape.shape, shape.dtype)
  meta = {**enc.meta, "model": {**dict(enc.meta.get("model") or {}),
                                "spectral_positions": "wavelength"}}
  return SpectralGPT(net, traverse_util.unflatten_dict(params), meta,
                     f"{enc.source} (wavelength positions, zero residuals)")
