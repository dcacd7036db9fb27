"""Wavelength-aware spectral positions: where a group of bands sits on the learned spectral table.

With `ModelSpec.spectral_positions == "wavelength"` the spectral position of a token group is a
function of its bands' wavelengths instead of a row index:

  position(group) = interp(table, anchors, centre(group)) + residual(fourier(centre, width))

`anchors` are the centres of the Sentinel-2 groups the table was learned on (the 12 SpectralGPT
bands at their nominal wavelengths, grouped by t_patch), so a group whose centre equals an anchor
gets exactly that table row (weights 1 and 0). The residual is a learned linear map of a Fourier
encoding, initialised to zero; weights trained with table positions (official, ours) carry it as
zeros, hence Sentinel-2 input gives bit-identical outputs. Outside the anchors' range the nearest
row is used (plus the residual).

A group is `t_patch` consecutive input bands: centre = mean of their centres, width = the span of
their responses (max(c + fwhm/2) - min(c - fwhm/2); fwhm 0 when not given).

Everything here is plain Python on host values (the band set is static: it fixes the number of
tokens), written with the standard library only: the PyTorch model (spectralgpt_jax/torch) reads
this file too, so both compute identical interpolation weights and features.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

POSITION_MODES = ("table", "wavelength")

# The 12 SpectralGPT bands (Sentinel-2 L2A order) at their nominal centre wavelength and
# bandwidth in nm (ESA Sentinel-2 MSI User Guide / SRF document nominal values). These are
# architecture constants: the anchors of the learned spectral table.
S2_REFERENCE = (("B01", 443.0, 20.0), ("B02", 490.0, 65.0), ("B03", 560.0, 35.0),
                ("B04", 665.0, 30.0), ("B05", 705.0, 15.0), ("B06", 740.0, 15.0),
                ("B07", 783.0, 20.0), ("B08", 842.0, 115.0), ("B8A", 865.0, 20.0),
                ("B09", 945.0, 20.0), ("B11", 1610.0, 90.0), ("B12", 2190.0, 180.0))
S2_CENTRES = tuple(c for _, c, _ in S2_REFERENCE)
S2_FWHM = tuple(f for _, _, f in S2_REFERENCE)

# Fourier encoding of (centre, width) in micrometres: sin and cos at NUM_FREQUENCIES octaves,
# periods 4 um down to 4 um / 2**(NUM_FREQUENCIES - 1) (31 nm).
NUM_FREQUENCIES = 8
NUM_FEATURES = 4 * NUM_FREQUENCIES


@dataclasses.dataclass(frozen=True)
class GroupPlan:
  """Spectral positions of the groups of one band set (host values, hashable).

  Attributes:
    lower, upper: per group, the table rows it lies between.
    weight: per group, the weight of `upper` (0 = exactly `lower`).
    features: per group, the NUM_FEATURES Fourier features of (centre, width).
    centres: per group, its centre wavelength in nm.
  """

  lower: tuple[int, ...]
  upper: tuple[int, ...]
  weight: tuple[float, ...]
  features: tuple[tuple[float, ...], ...]
  centres: tuple[float, ...]

  @property
  def num_groups(self) -> int:
    return len(self.lower)


def _floats(values, what: str) -> tuple[float, ...]:
  try:
    out = tuple(float(v) for v in values)
  except TypeError as e:  # a traced array cannot be read on the host
    raise TypeError(f"{what} must be host values (a list or numpy array), not traced: {e}") \
        from None
  for i, v in enumerate(out):
    if not math.isfinite(v) or v <= 0:
      raise ValueError(f"{what}: band {i} has {v} nm; a wavelength must be finite and positive")
  return out


def groups(centres: Sequence[float], fwhm: Sequence[float] | None,
           t_patch: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Per-band centres/fwhm (nm) -> per-group (centres, widths) for consecutive t_patch bands."""
  c = _floats(centres, "wavelengths")
  f = (0.0,) * len(c) if fwhm is None else tuple(float(v) for v in fwhm)
  if len(f) != len(c):
    raise ValueError(f"{len(f)} fwhm values for {len(c)} wavelengths")
  if len(c) < t_patch or len(c) % t_patch:
    raise ValueError(f"{len(c)} bands: need a positive multiple of t_patch {t_patch} (group the "
                     "bands first, data_pipelines.sensors.group_bands)")
  mid, width = [], []
  for g in range(0, len(c), t_patch):
    cs, fs = c[g:g + t_patch], f[g:g + t_patch]
    mid.append(sum(cs) / t_patch)
    width.append(max(x + y / 2 for x, y in zip(cs, fs)) - min(x - y / 2 for x, y in zip(cs, fs)))
  return tuple(mid), tuple(width)


def anchors(t_patch: int) -> tuple[float, ...]:
  """Group centres of the Sentinel-2 reference bands: where each table row sits (nm)."""
  return groups(S2_CENTRES, S2_FWHM, t_patch)[0]


def fourier(centre: float, width: float) -> tuple[float, ...]:
  """NUM_FEATURES features of a group: sin, cos of centre and width (um) at octave frequencies."""
  out = []
  for value in (centre / 1000.0, width / 1000.0):
    for k in range(NUM_FREQUENCIES):
      angle = 2.0 * math.pi * value * (2.0 ** k) / 4.0
      out += [math.sin(angle), math.cos(angle)]
  return tuple(out)


def plan(centres: Sequence[float], fwhm: Sequence[float] | None, t_patch: int) -> GroupPlan:
  """The GroupPlan of a band set given per band (nm), in input order."""
  mid, width = groups(centres, fwhm, t_patch)
  rows = anchors(t_patch)
  lower, upper, weight = [], [], []
  for c in mid:
    if len(rows) == 1 or c <= rows[0]:
      lo, hi, w = 0, min(1, len(rows) - 1), 0.0
    elif c >= rows[-1]:
      lo, hi, w = len(rows) - 2, len(rows) - 1, 1.0
    else:
      hi = next(i for i, r in enumerate(rows) if r > c)
      lo = hi - 1
      w = (c - rows[lo]) / (rows[hi] - rows[lo])
    lower.append(lo)
    upper.append(hi)
    weight.append(w)
  return GroupPlan(tuple(lower), tuple(upper), tuple(weight),
                   tuple(fourier(c, w) for c, w in zip(mid, width)), mid)


def is_reference(centres: Sequence[float]) -> bool:
  """Whether a band set is exactly the Sentinel-2 reference centres, in SpectralGPT order."""
  return tuple(float(c) for c in centres) == S2_CENTRES


def table_mismatch(centres: Sequence[float]) -> str | None:
  """For a table-position model: None if the band set is the Sentinel-2 reference, else a
  one-line reason naming the first band that differs."""
  c = tuple(float(v) for v in centres)
  for i, (name, ref, _) in enumerate(S2_REFERENCE):
    if i >= len(c) or c[i] != ref:
      got = f"{c[i]} nm" if i < len(c) else "nothing"
      return (f"band {i} is {got}, not Sentinel-2 {name} ({ref} nm): a model with "
              "spectral_positions='table' takes only the 12 SpectralGPT bands; build it with "
              "spectral_positions='wavelength'")
  if len(c) > len(S2_REFERENCE):
    return (f"band {len(S2_REFERENCE)} ({c[len(S2_REFERENCE)]} nm) is beyond the 12 SpectralGPT "
            "bands; build the model with spectral_positions='wavelength'")
  return None
