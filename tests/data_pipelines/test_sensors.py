"""Sensor table, band metadata from files and STAC, and the spectral input modes, against
independent computations (direct integration of a known spectrum)."""

import numpy as np
import pytest

from data_pipelines import band_metadata, sensors, spectral_resample


def _spectrum(nm):
  """A smooth, non-linear reflectance spectrum (dimensionless)."""
  return 0.2 + 0.1 * np.sin(nm / 180.0) + 0.05 * (nm / 1000.0) ** 2


def _band_values(bands, fine=np.arange(300.0, 2700.0, 0.05)):
  """Each band's response-weighted mean of the spectrum, integrated on a fine grid."""
  out = []
  for b in bands:
    sigma = b.fwhm_nm / (2 * np.sqrt(2 * np.log(2)))
    r = np.exp(-0.5 * ((fine - b.centre_nm) / sigma) ** 2)
    out.append(np.trapezoid(r * _spectrum(fine), fine) / np.trapezoid(r, fine))
  return np.array(out)


def test_hyperspectral_resamples_onto_s2_like_direct_integration():
  hyper = sensors.lookup("enmap_like")
  cube = np.broadcast_to(_band_values(hyper)[:, None, None], (len(hyper), 2, 2))
  out, dropped = spectral_resample.to_s2(cube, hyper)
  assert dropped == () and out.shape == (12, 2, 2)
  want = _band_values(spectral_resample.s2_bands())
  np.testing.assert_allclose(out[:, 0, 0], want, rtol=5e-3)


def test_subsets_keep_identical_bands_and_drop_uncovered_groups():
  s2 = sensors.lookup("sentinel2_l2a", "spectralgpt")
  rgbn = sensors.lookup("sentinel2_l2a", "B02,B03,B04,B08")
  cube = np.arange(4 * 4, dtype=np.float32).reshape(4, 2, 2)
  prep = spectral_resample.prepare(cube, rgbn, "resample")
  assert prep.drop_groups == (1, 3)                  # (B04, B05, B06) and (B09, B11, B12)
  names = [b.name for b in s2]
  for i, name in enumerate(["B02", "B03", "B08"]):   # kept groups: exact copies
    np.testing.assert_array_equal(prep.cube[names.index(name)], cube[[0, 1, 3][i]])
  assert not prep.cube[3:6].any() and not prep.cube[9:].any()
  zero = spectral_resample.prepare(cube, rgbn, "zero_fill")
  np.testing.assert_array_equal(zero.cube[[1, 2, 3, 7]], cube)
  assert not np.delete(zero.cube, [1, 2, 3, 7], axis=0).any()
  full = spectral_resample.prepare(cube[:3].repeat(4, 0), s2[::-1], "s2")
  assert [b.name for b in full.bands] == names and full.model_kwargs() == {}


def test_band_descriptors_from_geotiff_and_stac(tmp_path):
  rasterio = pytest.importorskip("rasterio")
  path = tmp_path / "h.tif"
  with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=3, dtype="float32",
                     crs="EPSG:32633", transform=rasterio.Affine(10, 0, 0, 0, -10, 40)
                     ) as dst:
    dst.write(np.zeros((3, 4, 4), np.float32))
    for i, (c, f) in enumerate([(0.45, 0.01), (0.55, 0.01), (0.65, 0.012)], start=1):
      dst.set_band_description(i, f"band {i}")
      dst.update_tags(i, wavelength=str(c), fwhm=str(f), wavelength_units="Micrometers")
  bands = band_metadata.from_geotiff(str(path))
  np.testing.assert_allclose([(b.centre_nm, b.fwhm_nm, b.gsd_m) for b in bands],
                             [(450, 10, 10), (550, 10, 10), (650, 12, 10)])
  named = band_metadata.from_descriptions(["B04", "B03", "B02"])   # names of the S2 table
  assert [b.centre_nm for b in named] == [665.0, 560.0, 490.0]
  stac = band_metadata.from_stac_eo_bands(
      [{"name": "coastal_blue"}, {"name": "x", "center_wavelength": 0.7,
                                  "full_width_half_max": 0.02}, {"name": "nir"}],
      sensor="planet_superdove")
  assert [b.centre_nm for b in stac] == pytest.approx([441.5, 700.0, 865.0])
  with pytest.raises(ValueError, match="band 'band 2' has no known wavelength"):
    band_metadata.from_descriptions(["B02", "", "B04"])


def test_remainder_is_padded_with_the_longest_wavelength_band():
  bands = sensors.lookup("planet_superdove")                        # 8 bands -> 9 planes
  order = sensors.group_bands(bands[::-1])
  assert len(order) == 9 and order[-1] == order[-2] == 0            # nir, reversed input
  centres = [bands[::-1][i].centre_nm for i in order]
  assert centres == sorted(centres)


def test_band_names_match_sentinel2_numbers_but_not_hyperspectral_channels():
  s2 = sensors.sensor("sentinel2_l2a")
  assert s2.band("b1") == s2.band("B01") and s2.band("b08a") == s2.band("B8A")
  for channel in ("b001", "b010", "b0012"):   # hyperspectral channel names, not S2 bands
    with pytest.raises(ValueError, match=channel):
      s2.band(channel)
