"""The OSCD reader on the six real cities of ../shared/data/oscd_s2_subset (read in place:
the change maps are CC BY-NC-SA and never copied into the repository)."""

import os
import pathlib
import warnings

import numpy as np
import pytest

from data_pipelines import oscd, resample, schema
from data_pipelines.errors import BadInputError

REPO = pathlib.Path(__file__).resolve().parents[2]
OSCD = pathlib.Path(os.environ.get("SPECTRALGPT_OSCD_DATA",
                                   REPO.parent / "shared" / "data" / "oscd_s2_subset"))
TRAIN = ("aguasclaras", "bercy", "bordeaux", "paris")


@pytest.fixture(scope="module")
def oscd_root():
  rasterio = pytest.importorskip("rasterio")
  del rasterio
  if not (OSCD / "SHA256SUMS.txt").exists():
    pytest.skip(f"OSCD subset not found at {OSCD} (set SPECTRALGPT_OSCD_DATA)")
  from data_pipelines.checksums import verify_sha256sums
  assert verify_sha256sums(OSCD) == 184   # the published files, unaltered
  return OSCD


def _raw(path):
  import rasterio
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with rasterio.open(path) as src:
      return src.read(1)


def test_cities_dates_and_grids(oscd_root):
  assert oscd.city_names(oscd_root) == sorted(TRAIN + ("hongkong", "rennes"))
  for city in oscd.city_names(oscd_root):
    rec = oscd.load_city(oscd_root, city)
    cm = _raw(oscd.label_path(oscd_root, city))
    assert rec["mask"].shape == cm.shape                     # the grid is the change map's
    assert rec["cube"].shape == rec["cube2"].shape == (12,) + cm.shape
    assert rec["cube"].dtype == rec["cube2"].dtype == np.float32
    assert rec["bands"] == list(schema.SPECTRALGPT_BANDS) and rec["key"] == city
    assert rec["date"] < rec["date2"]
  assert oscd.load_city(oscd_root, "bercy")["date"] == "2016-11-30"


def test_band_order_and_resampling(oscd_root):
  rec = oscd.load_city(oscd_root, "bercy", bands=schema.L1C_BANDS)
  assert rec["cube"].shape[0] == 13 and rec["bands"][10] == "B10"
  files = oscd.band_files(oscd_root / oscd.IMAGES_DIR / "bercy" / "imgs_1")
  h, w = rec["mask"].shape
  for i, band in enumerate(schema.L1C_BANDS):
    raw = _raw(files[band]).astype(np.float32)
    f = schema.BANDS[band].resolution_m // 10
    want = raw if f == 1 else np.maximum(resample.resize(raw, (raw.shape[0] * f,
                                                               raw.shape[1] * f)), 0)
    np.testing.assert_array_equal(rec["cube"][i], want[:h, :w], err_msg=band)
  twelve = oscd.load_city(oscd_root, "bercy")
  np.testing.assert_array_equal(twelve["cube"], np.delete(rec["cube"], 10, axis=0))


def test_short_second_date_is_edge_padded(oscd_root):
  rec = oscd.load_city(oscd_root, "hongkong")
  raw = _raw(oscd.band_files(oscd_root / oscd.IMAGES_DIR / "hongkong" / "imgs_2")["B02"])
  assert raw.shape == (693, 538) and rec["cube2"].shape[1:] == (695, 540)
  np.testing.assert_array_equal(rec["cube2"][1, :693, :538], raw)
  np.testing.assert_array_equal(rec["cube2"][1, 694, :538], raw[-1])


def test_shipped_maps_are_one_two_and_normalised(oscd_root):
  for city in TRAIN:
    path = oscd.label_path(oscd_root, city)
    cm = _raw(path)
    assert set(np.unique(cm)) == {1, 2}
    mask = oscd.load_city(oscd_root, city)["mask"]
    assert mask.dtype == np.int32 and set(np.unique(mask)) == {0, 1}
    assert int(mask.sum()) == int((cm == 2).sum())
  assert int(oscd.load_city(oscd_root, "bercy")["mask"].sum()) == 1046   # PROVENANCE.md
  masks = [oscd.load_city(oscd_root, c)["mask"] for c in TRAIN]
  p = oscd.change_fraction(masks)
  want = sum(int((_raw(oscd.label_path(oscd_root, c)) == 2).sum()) for c in TRAIN) / sum(
      m.size for m in masks)
  assert p == pytest.approx(want) and 0.003 < p < 0.038


def test_change_map_conventions_and_refusals():
  ones_twos = np.array([[1, 2], [1, 1]], np.uint8)
  np.testing.assert_array_equal(oscd.normalize_change_map(ones_twos, "x.tif"), [[0, 1], [0, 0]])
  zero_one = np.array([[0, 1], [0, 0]], np.uint8)
  np.testing.assert_array_equal(oscd.normalize_change_map(zero_one, "x.tif"), zero_one)
  np.testing.assert_array_equal(oscd.normalize_change_map(np.ones((2, 2)), "x.tif",
                                                          "one_two"), np.zeros((2, 2)))
  with pytest.raises(BadInputError, match=r"bad-cm\.tif.*\[0, 1, 2\].*neither"):
    oscd.normalize_change_map(np.array([0, 1, 2]), "bad-cm.tif")
  with pytest.raises(BadInputError, match=r"\[0, 255\]"):
    oscd.normalize_change_map(np.array([0, 255]), "png-like.tif")
  with pytest.raises(BadInputError, match=r"\[1\] fits both"):
    oscd.normalize_change_map(np.ones(4, np.uint8), "all-ones.tif")
  with pytest.raises(BadInputError, match=r"\[0, 1\] do not fit the 'one_two'"):
    oscd.normalize_change_map(zero_one, "x.tif", "one_two")


def _fake_root(oscd_root, tmp_path, values):
  """bercy's real images (linked) with a change map we write ourselves."""
  import rasterio
  src = oscd_root / oscd.IMAGES_DIR / "bercy"
  (tmp_path / oscd.IMAGES_DIR).mkdir()
  (tmp_path / oscd.IMAGES_DIR / "bercy").symlink_to(src, target_is_directory=True)
  cm_dir = tmp_path / oscd.LABEL_DIRS[0] / "bercy" / "cm"
  cm_dir.mkdir(parents=True)
  cm = np.resize(np.asarray(values, np.uint8), (395, 360))
  with warnings.catch_warnings():   # like the published maps, ours has no geotransform
    warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
    with rasterio.open(cm_dir / "bercy-cm.tif", "w", driver="GTiff", height=395, width=360,
                       count=1, dtype="uint8") as dst:
      dst.write(cm, 1)
  return tmp_path, cm_dir / "bercy-cm.tif"


def test_load_city_refuses_a_map_of_neither_convention(oscd_root, tmp_path):
  root, path = _fake_root(oscd_root, tmp_path, [0, 1, 3])
  with pytest.raises(BadInputError) as e:
    oscd.load_city(root, "bercy")
  assert str(path) in str(e.value) and "[0, 1, 3]" in str(e.value)


def test_missing_band_and_grid_mismatch_name_the_file(oscd_root, tmp_path):
  root, _ = _fake_root(oscd_root, tmp_path, [0, 1])
  assert set(np.unique(oscd.load_city(root, "bercy")["mask"])) == {0, 1}   # README convention
  date_dir = tmp_path / "imgs_1"
  date_dir.mkdir()
  files = oscd.band_files(oscd_root / oscd.IMAGES_DIR / "bercy" / "imgs_1")
  for band, f in files.items():
    if band != "B05":
      (date_dir / f.name).symlink_to(f)
  with pytest.raises(BadInputError, match=r"imgs_1: \[B05\] no GeoTIFF for band\(s\) \['B05'\]"):
    oscd.read_date(date_dir, (395, 360))
  with pytest.raises(BadInputError, match=r"_B01\.tif: \[B01\].*short of the city grid"):
    oscd.read_date(oscd_root / oscd.IMAGES_DIR / "bercy" / "imgs_1", (395 + 20, 360))


def test_official_city_lists_and_config_selection(oscd_root, tmp_path):
  from data_pipelines import config, dense
  from data_pipelines.datasets import oscd as oscd_source
  root, _ = _fake_root(oscd_root, tmp_path, [1, 2])
  with pytest.raises(FileNotFoundError, match="train.txt not found"):
    oscd.official_cities(root, "train")
  (root / oscd.IMAGES_DIR / "train.txt").write_text("bercy\n")
  (root / oscd.IMAGES_DIR / "test.txt").write_text("paris, rennes")
  assert oscd.official_cities(root, "train") == ["bercy"]
  assert oscd.official_cities(root, "test") == ["paris", "rennes"]
  cfg = config.default_data_config()
  cfg.update(source="oscd", paths=str(oscd_root), oscd={"dataset_split": "", "cities": ""})
  assert oscd_source.city_list(cfg) == oscd.city_names(oscd_root)
  cfg.update(paths=str(root), oscd={"dataset_split": "train"})
  assert oscd_source.city_list(cfg) == ["bercy"]
  cfg.update(paths=str(oscd_root), oscd={"cities": ",".join(TRAIN)})
  p = dense.change_fraction(cfg)
  assert p == pytest.approx(oscd.change_fraction(
      [oscd.load_city(oscd_root, c)["mask"] for c in TRAIN]))
