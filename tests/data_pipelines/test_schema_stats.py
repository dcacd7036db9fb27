"""Band facts, selection by name, DN/reflectance/offset handling, statistics with provenance."""

import numpy as np
import pytest

from data_pipelines import labels as labels_lib
from data_pipelines import schema
from data_pipelines import stats as stats_lib


def test_band_sets():
  assert len(schema.L1C_BANDS) == 13 and len(schema.L2A_BANDS) == 12
  assert "B10" not in schema.L2A_BANDS
  assert schema.SPECTRALGPT_BANDS == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08",
                                      "B8A", "B09", "B11", "B12")
  assert schema.EUROSAT_BANDS[-1] == "B8A" and schema.EUROSAT_BANDS[9] == "B10"
  # The official --dropped_bands 10 on EuroSAT drops B11, not B10.
  assert "B11" not in schema.EUROSAT_OFFICIAL_DROPPED_ORDER
  assert "B10" in schema.EUROSAT_OFFICIAL_DROPPED_ORDER
  assert {b: schema.BANDS[b].resolution_m for b in ("B01", "B02", "B05", "B8A", "B09")} == {
      "B01": 60, "B02": 10, "B05": 20, "B8A": 20, "B09": 60}


def test_names_normalize_and_parse():
  assert schema.normalize_band_name("b8a") == "B8A"
  assert schema.normalize_band_name("B1") == "B01"
  assert schema.parse_band_list("B2, b03") == ("B02", "B03")
  assert schema.parse_band_list("eurosat") == schema.EUROSAT_BANDS
  with pytest.raises(KeyError):
    schema.normalize_band_name("B13")
  with pytest.raises(ValueError, match="duplicate"):
    schema.parse_band_list("B02,B2")


def test_select_bands_by_name_eurosat_to_spectralgpt():
  cube = np.arange(13)[:, None, None] * np.ones((13, 2, 2))   # plane i holds i
  out = schema.select_bands(cube, schema.EUROSAT_BANDS, schema.SPECTRALGPT_BANDS)
  want = [schema.EUROSAT_BANDS.index(b) for b in schema.SPECTRALGPT_BANDS]
  np.testing.assert_array_equal(out[:, 0, 0], want)
  assert out[8, 0, 0] == 12          # B8A comes from the last EuroSAT plane
  ts = np.stack([cube, cube + 100])   # [T, C, H, W]
  np.testing.assert_array_equal(
      schema.select_bands(ts, schema.EUROSAT_BANDS, ["B8A"])[:, 0, 0, 0], [12, 112])
  with pytest.raises(KeyError, match="B10 does not exist in L2A"):
    schema.select_bands(cube[:12], schema.L2A_BANDS, ["B10"])
  with pytest.raises(ValueError, match="13 band names"):
    schema.select_bands(cube[:12], schema.EUROSAT_BANDS, ["B02"])


def test_offset_and_reflectance():
  assert schema.processing_baseline("S2B_MSIL2A_20220301T_N0400_R022_T33UUP") == "04.00"
  assert schema.radio_add_offset("S2A_MSIL1C_20170613T101031_N0205_R022_T33UUP") == 0
  assert schema.radio_add_offset("S2A_MSIL2A_20230613T101031_N0509_R022_T33UUP") == -1000
  assert schema.radio_add_offset("", "2022-01-24") == 0
  assert schema.radio_add_offset("", "2022-01-25") == -1000
  dn_new = np.array([500, 1000, 2500], np.uint16)   # baseline 04.00 DN
  np.testing.assert_array_equal(schema.harmonize_dn(dn_new, -1000), [0, 0, 1500])
  np.testing.assert_allclose(schema.dn_to_reflectance(dn_new, -1000), [-0.05, 0.0, 0.15])
  refl = np.array([0.0, 0.1234, 0.5])
  for off in (0, -1000):
    np.testing.assert_allclose(
        schema.dn_to_reflectance(schema.reflectance_to_dn(refl, off), off), refl, atol=1e-4)


def test_stats_by_name_with_provenance():
  mean, std = stats_lib.EUROSAT_OFFICIAL.for_bands(schema.SPECTRALGPT_BANDS)
  assert mean.shape == (12,)
  assert mean[8] == pytest.approx(1805.06846033)   # B8A: the 13th official value
  assert mean[10] == pytest.approx(582.72633433)   # B11: the 11th official value (sic)
  m2, _ = stats_lib.FMOW_S2_OFFICIAL.for_bands(["B8A", "B01"])
  np.testing.assert_allclose(m2, [1972.62420416, 1370.19151926])
  for s in stats_lib.REGISTRY.values():
    assert s.provenance and s.units == "DN"
  with pytest.raises(KeyError, match="unknown normalization statistics"):
    stats_lib.get_stats("imagenet")


def test_running_stats_match_numpy():
  rng = np.random.default_rng(0)
  cubes = [rng.normal(1000 * (i + 1), 50, (3, 8, 8)) for i in range(5)]
  a, b = stats_lib.RunningBandStats("B02 B03 B04".split()), stats_lib.RunningBandStats(
      "B02 B03 B04".split())
  for c in cubes[:2]:
    a.update(c)
  for c in cubes[2:]:
    b.update(c)
  a.merge(b)
  allv = np.concatenate([c.reshape(3, -1) for c in cubes], axis=1)
  np.testing.assert_allclose(a.mean, allv.mean(1))
  np.testing.assert_allclose(a.std, allv.std(1))
  np.testing.assert_allclose(a.min, allv.min(1))
  r = stats_lib.RunningBandStats.from_json(a.to_json())
  np.testing.assert_allclose(r.std, a.std)


def test_bigearthnet19_mapping():
  assert len(labels_lib.BIGEARTHNET43) == 43 and len(labels_lib.BIGEARTHNET19) == 19
  assert labels_lib.bigearthnet_indices(["Peatbogs", "Water bodies", "Airports"]) == [15, 17]
  assert labels_lib.bigearthnet_indices(["Airports"], "bigearthnet43") == [5]
  with pytest.raises(KeyError, match="Lava"):
    labels_lib.bigearthnet_indices(["Lava"])
  np.testing.assert_array_equal(labels_lib.multi_hot([0, 2], 3), [1, 0, 1])
