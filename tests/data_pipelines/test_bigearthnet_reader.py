"""The BigEarthNet-S2 reader on the six real patches: checksums, band order, alignment, ranges."""

import json
import pathlib
import shutil

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")

from data_pipelines import bigearthnet as ben  # noqa: E402
from data_pipelines import labels as labels_lib  # noqa: E402
from data_pipelines import resample  # noqa: E402
from data_pipelines import schema  # noqa: E402
from data_pipelines.errors import ChecksumError  # noqa: E402


@pytest.fixture(scope="module")
def patches(example_dir):
  ben.verify_sha256sums(example_dir)   # the fixtures must be the published files
  found = ben.list_bigearthnet_patches(example_dir)
  assert len(found) == 6
  return found


def _read(folder: pathlib.Path, band: str) -> np.ndarray:
  with rasterio.open(folder / f"{folder.name}_{band}.tif") as src:
    return src.read(1).astype(np.float32)


def test_sha256sums_pass_and_name_the_altered_file(example_dir, tmp_path):
  assert ben.verify_sha256sums(example_dir) == 78
  src = ben.list_bigearthnet_patches(example_dir)[0]
  copy = tmp_path / "ben"
  shutil.copytree(src, copy / src.name)
  lines = [l for l in (example_dir / "SHA256SUMS.txt").read_text().splitlines() if src.name in l]
  (copy / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
  assert ben.verify_sha256sums(copy / src.name) == 13   # sums file found in the parent
  victim = copy / src.name / f"{src.name}_B8A.tif"
  victim.chmod(0o644)
  data = bytearray(victim.read_bytes())
  data[-1] ^= 0x01
  victim.write_bytes(bytes(data))
  with pytest.raises(ChecksumError, match=f"{src.name}_B8A.tif"):
    ben.verify_sha256sums(copy)


def test_cube_shape_order_and_metadata(patches):
  for folder in patches:
    cube, meta = ben.read_bigearthnet_patch(folder)
    assert cube.shape == (12, 120, 120) and cube.dtype == np.float32
    assert meta["bands"] == list(schema.SPECTRALGPT_BANDS)
    # 10 m bands pass through unchanged, at the position of their own file name.
    for band in ("B02", "B03", "B04", "B08"):
      np.testing.assert_array_equal(cube[meta["bands"].index(band)], _read(folder, band))
    js = json.loads(next(folder.glob("*_labels_metadata.json")).read_text())
    assert meta["labels"] == js["labels"]
    assert meta["labels19"] == labels_lib.bigearthnet_indices(js["labels"])
    assert meta["crs"].startswith("EPSG:326") and meta["crs"][5:] in js["projection"]
    left, bottom, right, top = meta["bounds"]
    assert (left, top, right, bottom) == (js["coordinates"]["ulx"], js["coordinates"]["uly"],
                                          js["coordinates"]["lrx"], js["coordinates"]["lry"])
    assert meta["date"].startswith(js["acquisition_date"][:10])
    assert meta["radio_add_offset"] == 0        # 2017-2018 products, baseline 02.0x
    # DN ranges: uint16 surface reflectance x 10000, every band non-constant.
    assert cube.min() >= 0 and cube.max() < 20000
    assert np.all(cube.max(axis=(1, 2)) > cube.min(axis=(1, 2)))


def test_band_order_by_name_not_position(patches):
  folder = patches[0]
  cube, _ = ben.read_bigearthnet_patch(folder)
  rev = tuple(reversed(schema.SPECTRALGPT_BANDS))
  cube_rev, meta = ben.read_bigearthnet_patch(folder, bands=rev)
  assert meta["bands"] == list(rev)
  np.testing.assert_array_equal(cube_rev, cube[::-1])
  np.testing.assert_array_equal(
      schema.select_bands(cube, schema.SPECTRALGPT_BANDS, rev), cube_rev)


def test_spatial_alignment_after_resampling(patches):
  for folder in patches[:3]:
    near, _ = ben.read_bigearthnet_patch(folder, resampling="nearest")
    bil, _ = ben.read_bigearthnet_patch(folder, resampling="bilinear")
    for band, factor in (("B8A", 2), ("B11", 2), ("B01", 6), ("B09", 6)):
      i = schema.SPECTRALGPT_BANDS.index(band)
      orig = _read(folder, band)
      n = orig.shape[0]
      blocks = near[i].reshape(n, factor, n, factor)
      # Nearest: each native pixel covers exactly its factor x factor block of the 10 m grid.
      np.testing.assert_array_equal(blocks.min(axis=(1, 3)), orig)
      np.testing.assert_array_equal(blocks.max(axis=(1, 3)), orig)
      # Bilinear (GDAL) equals an independent pixel-is-area bilinear upsampling.
      ref = resample.resize(orig, (120, 120), "bilinear", antialias=False)
      np.testing.assert_allclose(bil[i], ref, atol=1e-2)
    # B8A (20 m) and B08 (10 m) see the same NIR scene: correlation peaks at zero shift.
    a, b = bil[schema.SPECTRALGPT_BANDS.index("B8A")], bil[schema.SPECTRALGPT_BANDS.index("B08")]
    def corr(dy, dx):
      x, y = a[4 + dy:116 + dy, 4 + dx:116 + dx], b[4:116, 4:116]
      x, y = x - x.mean(), y - y.mean()
      return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))
    scores = {(dy, dx): corr(dy, dx) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2)}
    assert max(scores, key=scores.get) == (0, 0) and scores[(0, 0)] > 0.85


def test_resize_cube(patches):
  cube, _ = ben.read_bigearthnet_patch(patches[0])
  out = ben.resize_cube(cube, 128)
  assert out.shape == (12, 128, 128) and out.dtype == np.float32
  np.testing.assert_allclose(out.mean(axis=(1, 2)), cube.mean(axis=(1, 2)), rtol=0.02)
  const = np.full((3, 120, 120), 7.0, np.float32)
  np.testing.assert_allclose(ben.resize_cube(const, 128), 7.0, rtol=1e-5)
  np.testing.assert_allclose(ben.resize_cube(const, 64), 7.0, rtol=1e-5)   # antialiased down
  np.testing.assert_array_equal(ben.resize_cube(cube, 120), cube)


def test_unknown_resampling_rejected(patches):
  with pytest.raises(ValueError, match="resampling"):
    ben.read_bigearthnet_patch(patches[0], resampling="magic")
