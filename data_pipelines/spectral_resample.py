"""Feeding any band set to a SpectralGPT model: four named modes, one entry point (`prepare`).

  "s2"          the input is the 12 SpectralGPT bands; reordered by name, nothing else.
  "wavelength"  bands sorted by wavelength and grouped in threes (sensors.group_bands); the
                model (spec.spectral_positions == "wavelength") places each group by its
                wavelengths. No resampling, no new bands.
  "resample"    no new parameter: the input is resampled onto the 12 Sentinel-2 bands by
                integrating Gaussian spectral responses (from centre and FWHM): each S2 band
                is the response-overlap-weighted mean of the input bands. A group of three S2
                bands with fewer than GROUP_MIN_COVERED bands the input covers (coverage >=
                COVERAGE_MIN) is dropped from the encoder as masked tokens (`drop_groups`),
                never zero-filled; in a kept group an uncovered band takes its overlap-weighted
                estimate (the nearest input band when nothing overlaps).
  "zero_fill"   what the benchmark harnesses do: each input band goes to the S2 slot of the
                same name (or the nearest centre within its FWHM), every other slot is 0. For
                comparison only.

Coverage of S2 band j = integral of R_j * min(1, sum_i R_i) / integral of R_j, responses
peak-normalised Gaussians (sigma = FWHM / 2.3548); an input band identical to the S2 band (same
centre and FWHM) is copied exactly and covers it.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from data_pipelines import schema
from data_pipelines import sensors as sensors_lib

MODES = ("s2", "wavelength", "resample", "zero_fill")
COVERAGE_MIN = 0.5
GROUP_MIN_COVERED = 2
_GRID_NM = np.arange(300.0, 2701.0, 1.0)
_MIN_FWHM_NM = 1.0  # a band without a width is treated as 1 nm wide


@dataclasses.dataclass(frozen=True)
class Prepared:
  """Model input for one mode.

  Attributes:
    cube: [..., C, H, W] float32 in the model's band order.
    bands: the Bands of cube's planes (after grouping / resampling).
    wavelengths, fwhm: per plane (nm) for a wavelength-position model call; None = S2 order.
    drop_groups: spectral groups to leave out of the encoder (resample mode).
  """

  cube: np.ndarray
  bands: tuple[sensors_lib.Band, ...]
  wavelengths: tuple[float, ...] | None
  fwhm: tuple[float, ...] | None
  drop_groups: tuple[int, ...]

  def model_kwargs(self) -> dict:
    """Keyword arguments of a model call / `encode` for this input."""
    out = {}
    if self.wavelengths is not None:
      out.update(wavelengths=self.wavelengths, fwhm=self.fwhm)
    if self.drop_groups:
      out["drop_groups"] = self.drop_groups
    return out


def s2_bands() -> tuple[sensors_lib.Band, ...]:
  """The 12 SpectralGPT bands at their nominal wavelengths (the model's reference)."""
  return sensors_lib.lookup("sentinel2_l2a", schema.SPECTRALGPT_BANDS)


def responses(bands: Sequence[sensors_lib.Band], grid: np.ndarray = _GRID_NM) -> np.ndarray:
  """Peak-normalised Gaussian responses [len(bands), len(grid)]."""
  c = np.array([b.centre_nm for b in bands], np.float64)[:, None]
  f = np.maximum(np.array([b.fwhm_nm or 0.0 for b in bands], np.float64), _MIN_FWHM_NM)
  sigma = f[:, None] / (2.0 * np.sqrt(2.0 * np.log(2.0)))
  return np.exp(-0.5 * ((grid[None] - c) / sigma) ** 2)


def resample_matrix(src: Sequence[sensors_lib.Band], dst: Sequence[sensors_lib.Band]
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(W [len(dst), len(src)], coverage [len(dst)]): dst = W @ src, rows summing to 1."""
  rs, rd = responses(src), responses(dst)
  overlap = rd @ rs.T                                        # [dst, src], grid step 1 nm
  coverage = (rd * np.minimum(1.0, rs.sum(0))[None]).sum(1) / rd.sum(1)
  for j, d in enumerate(dst):
    same = [i for i, s in enumerate(src) if (s.centre_nm, s.fwhm_nm) == (d.centre_nm, d.fwhm_nm)]
    if same:
      overlap[j] = 0.0
      overlap[j, same[0]] = 1.0
      coverage[j] = 1.0
  centres = np.array([b.centre_nm for b in src])
  for j in np.flatnonzero(overlap.sum(1) <= 1e-9):            # nothing overlaps: nearest band
    overlap[j] = 0.0
    overlap[j, int(np.argmin(np.abs(centres - dst[j].centre_nm)))] = 1.0
  return overlap / overlap.sum(1, keepdims=True), coverage


def to_s2(cube: np.ndarray, bands: Sequence[sensors_lib.Band], t_patch: int = 3,
          coverage_min: float = COVERAGE_MIN,
          group_min: int = GROUP_MIN_COVERED) -> tuple[np.ndarray, tuple[int, ...]]:
  """[..., C, H, W] -> ([..., 12, H, W] on the SpectralGPT bands, dropped groups); the planes
  of dropped groups are 0 and must not reach the model (pass drop_groups)."""
  sensors_lib.check(bands)
  _check_planes(cube, bands)
  target = s2_bands()
  w, coverage = resample_matrix(bands, target)
  out = np.einsum("jc,...chw->...jhw", w, np.asarray(cube, np.float64)).astype(np.float32)
  missing = coverage < coverage_min
  groups = (~missing).reshape(-1, t_patch).sum(1) < group_min
  if groups.all():
    raise ValueError(f"bands {[b.name for b in bands]} cover no Sentinel-2 group ({group_min} "
                     f"of {t_patch} bands with coverage >= {coverage_min}; coverage "
                     f"{np.round(coverage, 2).tolist()})")
  out[..., np.repeat(groups, t_patch), :, :] = 0.0
  return out, tuple(int(g) for g in np.flatnonzero(groups))


def zero_fill(cube: np.ndarray, bands: Sequence[sensors_lib.Band]) -> np.ndarray:
  """[..., C, H, W] -> [..., 12, H, W]: each band in its S2 slot (same name, else the nearest
  centre within the band's FWHM), the other slots 0, as the benchmark harnesses do."""
  sensors_lib.check(bands)
  _check_planes(cube, bands)
  target = s2_bands()
  names = [b.name for b in target]
  out = np.zeros((*cube.shape[:-3], len(target), *cube.shape[-2:]), np.float32)
  used: dict[int, str] = {}
  for i, b in enumerate(bands):
    slot = _s2_slot(b, target, names)
    if slot in used:
      raise ValueError(f"band {b.name!r} falls on Sentinel-2 {names[slot]} already taken by "
                       f"band {used[slot]!r}")
    used[slot] = b.name
    out[..., slot, :, :] = cube[..., i, :, :]
  return out


def _s2_name(name: str) -> str:
  try:
    return schema.normalize_band_name(name)
  except KeyError:
    return name


def _s2_slot(band: sensors_lib.Band, target, names) -> int:
  if _s2_name(band.name) in names:
    return names.index(_s2_name(band.name))
  dist = [abs(t.centre_nm - band.centre_nm) for t in target]
  slot = int(np.argmin(dist))
  if dist[slot] > max(band.fwhm_nm or 0.0, target[slot].fwhm_nm):
    raise ValueError(f"band {band.name!r} ({band.centre_nm} nm) is no Sentinel-2 band: the "
                     f"nearest, {names[slot]}, is {dist[slot]:.0f} nm away")
  return slot


def _check_planes(cube: np.ndarray, bands: Sequence[sensors_lib.Band]) -> None:
  if cube.ndim < 3 or cube.shape[-3] != len(bands):
    raise ValueError(f"cube {cube.shape} does not have the {len(bands)} bands "
                     f"{[b.name for b in bands]} on axis -3")


def prepare(cube: np.ndarray, bands: Sequence[sensors_lib.Band], mode: str,
            t_patch: int = 3) -> Prepared:
  """A cube [..., C, H, W] of `bands` -> the model input of `mode` (see the module docstring)."""
  bands = tuple(bands)
  if mode not in MODES:
    raise ValueError(f"spectral mode {mode!r}; use one of {MODES}")
  target = s2_bands()
  if mode == "s2":
    _check_planes(cube, bands)
    names = [_s2_name(b.name) for b in bands]
    missing = [n for n in schema.SPECTRALGPT_BANDS if n not in names]
    if missing:
      raise ValueError(f"spectral mode 's2' needs the 12 SpectralGPT bands; band {missing[0]} "
                       f"is not among {[b.name for b in bands]}")
    order = [names.index(n) for n in schema.SPECTRALGPT_BANDS]
    return Prepared(np.asarray(cube)[..., order, :, :], target, None, None, ())
  if mode == "wavelength":
    _check_planes(cube, bands)
    order = sensors_lib.group_bands(bands, t_patch)
    grouped = tuple(bands[i] for i in order)
    centres, fwhm = sensors_lib.model_wavelengths(grouped, "wavelength", t_patch)
    return Prepared(np.asarray(cube)[..., list(order), :, :], grouped, centres, fwhm, ())
  if mode == "resample":
    out, dropped = to_s2(cube, bands, t_patch)
    return Prepared(out, target, None, None, dropped)
  return Prepared(zero_fill(cube, bands), target, None, None, ())
