"""The band set a run trains on (`config.spectral`): any sensor's bands, one spectral mode.

  config.spectral.sensor  "" (default): the model's own 12 SpectralGPT bands, nothing changes;
                          else a name of data_pipelines.sensors.SENSORS (e.g. "landsat8_oli",
                          "enmap_like" for 224 hyperspectral bands).
  config.spectral.bands   "" = every band of the sensor, or a comma list of its band names.
  config.spectral.mode    data_pipelines.spectral_resample.MODES: "wavelength" (the model needs
                          model.spectral_positions="wavelength"), "resample" (onto the 12 S2
                          bands, uncovered groups dropped as masked tokens that carry no loss),
                          "zero_fill", or "s2".
The band set is static: it fixes the model input's plane count, the wavelengths the positions
are computed from and the dropped groups, all compile-time constants of the step. So one step
takes one band set on every host (docs/sensors.md, "Pretraining on other sensors").
Host batches name their planes by `config.data.bands`; `prepare` picks the band set's bands
from them by name and applies the mode (`prepare_batch`: both dates of a change batch).
Segmentation and change models fix their band set when built: `fix_dense_model` writes the
band set's wavelengths into config.model (so the run's model record carries them); their
heads fuse every spectral group, so "resample" (dropped groups) is refused for them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from data_pipelines import schema
from data_pipelines import sensors
from data_pipelines import spectral_resample


@dataclasses.dataclass(frozen=True)
class BandSet:
  """bands: the sensor's Bands the run reads; mode; num_bands: planes of the model input;
  model_kwargs: wavelengths / fwhm / drop_groups of every model call (host values);
  data_bands: names of the host batches' planes (config.data.bands; None = `bands`)."""

  bands: tuple[sensors.Band, ...]
  mode: str
  num_bands: int
  model_kwargs: dict[str, Any]
  data_bands: tuple[str, ...] | None = None

  def prepare(self, cube: np.ndarray) -> np.ndarray:
    """Host batch [B, C, H, W] (planes `data_bands`) -> model input [B, num_bands, H, W]; the
    band set's bands are picked from the planes by name."""
    cube = np.asarray(cube, np.float32)
    if self.data_bands is not None:
      cube = cube[:, _plane_indices(self.bands, self.data_bands)]
    return spectral_resample.prepare(cube, self.bands, self.mode).cube


  def prepare_batch(self, host: dict[str, Any]) -> dict[str, Any]:
    """A host batch with its "cube" (and a change batch's "cube2") prepared."""
    return {**host, **{k: self.prepare(host[k]) for k in ("cube", "cube2") if k in host}}


DENSE_KINDS = ("seg", "change")


def fix_dense_model(config, bands: BandSet) -> None:
  """For a segmentation / change model: the band set's wavelengths and FWHM (model input
  order) into config.model.wavelengths / .fwhm for mode "wavelength" (the model builds its
  heads for that band set); ValueError for "resample", whose dropped groups such a model
  cannot leave out."""
  if bands.mode == "resample":
    raise ValueError(f"config.spectral.mode 'resample' drops spectral groups (band "
                     f"{bands.bands[0].name!r} of {len(bands.bands)}); a segmentation or change "
                     "model fuses every group: use mode 'wavelength' or 'zero_fill'")
  if bands.mode != "wavelength":
    return
  with config.unlocked():
    config.model.wavelengths = [float(c) for c in bands.model_kwargs["wavelengths"]]
    config.model.fwhm = [float(f) for f in bands.model_kwargs["fwhm"]]


def _plane_indices(bands, names) -> list[int]:
  keys = [_key(n) for n in names]
  out = []
  for b in bands:
    if _key(b.name) not in keys:
      raise ValueError(f"band {b.name!r} of config.spectral is not among the data's bands "
                       f"{list(names)} (config.data.bands)")
    out.append(keys.index(_key(b.name)))
  return out


def _key(name: str) -> str:
  """Band names compare case-free; Sentinel-2 names through the schema (B1 == B01), other
  names exactly (a hyperspectral b001 is not B01)."""
  try:
    return schema.normalize_band_name(name) if len(name.strip()) <= 3 else name.strip().lower()
  except KeyError:
    return name.strip().lower()


def from_config(config) -> BandSet | None:
  """The BandSet of `config.spectral`, or None for the model's own Sentinel-2 bands."""
  block = config.get("spectral")
  if block is None or not block.get("sensor"):
    return None
  mode = str(block.get("mode") or "s2")
  bands = sensors.lookup(str(block.sensor), str(block.get("bands") or "") or None)
  if mode == "wavelength" and config.model.get("spectral_positions", "table") != "wavelength":
    raise ValueError(f"config.spectral.mode 'wavelength' needs config.model.spectral_positions="
                     f"'wavelength' (band {bands[0].name!r} of {block.sensor} has no table row)")
  probe = spectral_resample.prepare(np.zeros((1, len(bands), 1, 1), np.float32), bands, mode)
  return BandSet(tuple(bands), mode, int(probe.cube.shape[1]), probe.model_kwargs(),
                 _data_bands(config))


def _data_bands(config) -> tuple[str, ...] | None:
  """Names of the data's planes: config.data.bands (a schema band-set name or a comma list of
  any sensor's names); None when the config names none."""
  text = str(config.get("data", {}).get("bands", "") or "")
  if not text:
    return None
  if text.strip().lower() in schema.BAND_SETS:
    return tuple(schema.BAND_SETS[text.strip().lower()])
  return tuple(s.strip() for s in text.split(",") if s.strip())
