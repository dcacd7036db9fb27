"""Every bad-input case gives an error naming file and field; --skip_bad records them instead."""

import json
import pathlib
import shutil

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import Affine  # noqa: E402

from data_pipelines import bigearthnet, geotiff, ingest  # noqa: E402
from data_pipelines.errors import BadInputError  # noqa: E402
from spectralgpt_jax.cli import ingest as ingest_cli  # noqa: E402


def from_origin(west, north, xsize, ysize):
  return Affine(xsize, 0.0, west, 0.0, -ysize, north)


def _write_tif(path, arr, crs="EPSG:32633", transform=None):
  arr = np.asarray(arr)
  if arr.ndim == 2:
    arr = arr[None]
  transform = transform or from_origin(400000, 5300000, 10, 10)
  with rasterio.open(path, "w", driver="GTiff", height=arr.shape[1], width=arr.shape[2],
                     count=arr.shape[0], dtype=arr.dtype, crs=crs, transform=transform) as dst:
    dst.write(arr)
  return path


@pytest.fixture()
def patch(example_dir, tmp_path):
  src = bigearthnet.list_bigearthnet_patches(example_dir)[0]
  dst = tmp_path / "ben" / src.name
  shutil.copytree(src, dst)
  for p in dst.iterdir():
    p.chmod(0o644)
  return dst


def _band(patch, band):
  return patch / f"{patch.name}_{band}.tif"


def _rewrite(path, *, dtype=None, crs=None, shape=None):
  with rasterio.open(path) as s:
    arr, tr, c = s.read(1), s.transform, s.crs
  if shape:
    arr = np.zeros(shape, arr.dtype)
    tr = from_origin(tr.c, tr.f, tr.a * 60 / shape[1], -tr.e * 60 / shape[0])
  path.unlink()
  _write_tif(path, arr.astype(dtype or arr.dtype), crs or c, tr)


@pytest.mark.parametrize("case,field,text", [
    ("missing", "B05", "missing band file"),
    ("shape", "shape", "expected (60, 60)"),
    ("crs", "crs", "differs from B02"),
    ("dtype", "dtype", "float32"),
    ("empty", "file", "empty file"),
    ("garbage", "file", "cannot read"),
])
def test_bigearthnet_bad_folder(patch, case, field, text):
  victim = _band(patch, "B05")
  if case == "missing":
    victim.unlink()
  elif case == "shape":
    _rewrite(victim, shape=(50, 50))
  elif case == "crs":
    _rewrite(victim, crs="EPSG:32634")
  elif case == "dtype":
    _rewrite(victim, dtype=np.float32)
  elif case == "empty":
    victim.write_bytes(b"")
  elif case == "garbage":
    victim.write_bytes(b"not a tiff at all")
  with pytest.raises(BadInputError) as err:
    bigearthnet.read_bigearthnet_patch(patch)
  assert err.value.field == field and text in str(err.value)
  assert err.value.path.endswith(victim.name)


@pytest.fixture()
def tifs(tmp_path):
  """Good and bad 13-band EuroSAT-like GeoTIFFs in class folders."""
  rng = np.random.default_rng(0)
  root = tmp_path / "eurosat"
  good = rng.integers(0, 4000, (13, 16, 16)).astype(np.uint16)
  files = {}
  for cls in ("Forest", "River"):
    (root / cls).mkdir(parents=True)
    files[f"good_{cls}"] = _write_tif(root / cls / f"{cls}_1.tif", good)
  nan = good.astype(np.float32)
  nan[4, 3, 5] = np.nan
  files["nonfinite"] = _write_tif(root / "Forest" / "nan.tif", nan)
  files["missing"] = _write_tif(root / "Forest" / "twelve.tif", good[:12])
  files["shape"] = _write_tif(root / "River" / "big.tif", np.zeros((13, 20, 16), np.uint16))
  files["dtype"] = _write_tif(root / "River" / "int32.tif", good.astype(np.int32))
  files["crs"] = _write_tif(root / "River" / "crs.tif", good, crs="EPSG:4326",
                            transform=from_origin(10, 50, 0.0001, 0.0001))
  (root / "River" / "empty.tif").write_bytes(b"")
  files["empty"] = root / "River" / "empty.tif"
  return root, files


@pytest.mark.parametrize("case,field,text", [
    ("nonfinite", "B05", "1 non-finite values (first at band B05, row 3, col 5)"),
    ("missing", "B8A", "missing band(s) ['B8A']"),
    ("shape", "shape", "(20, 16) != expected (16, 16)"),
    ("dtype", "dtype", "int32"),
    ("crs", "crs", "EPSG:32633"),
    ("empty", "file", "empty file"),
])
def test_geotiff_bad_file(tifs, case, field, text):
  _, files = tifs
  with pytest.raises(BadInputError) as err:
    geotiff.read_geotiff(files[case], bands="eurosat", expect_shape=(16, 16),
                         expect_crs="EPSG:32633")
  assert err.value.field == field and text in str(err.value)
  assert err.value.path == str(files[case])


def test_skip_bad_records_them_in_manifest(tifs, tmp_path):
  root, files = tifs
  opts = dict(bands="eurosat", label_from_dir=True, expect_shape=(16, 16),
              expect_crs="EPSG:32633")
  with pytest.raises(BadInputError, match="non-finite|missing band|empty|dtype|shape|crs"):
    ingest.ingest("geotiff", [str(root)], tmp_path / "strict", num_shards=2, **opts)
  assert not list((tmp_path / "strict").glob("*.tfrecord*"))   # nothing half-written
  m = ingest.ingest("geotiff", [str(root)], tmp_path / "lenient", num_shards=2,
                    skip_bad=True, **opts)
  assert m["num_records"] == 2 and m["labels"]["class_names"] == ["Forest", "River"]
  skipped = {pathlib.Path(s["path"]).name: s["field"] for s in m["skipped"]}
  assert skipped == {"nan.tif": "B05", "twelve.tif": "B8A", "big.tif": "shape",
                     "int32.tif": "dtype", "crs.tif": "crs", "empty.tif": "file"}
  on_disk = json.loads((tmp_path / "lenient" / "manifest.json").read_text())
  assert on_disk["skipped"] == m["skipped"]


def test_cli_reports_bad_file(tifs, tmp_path, capsys):
  root, _ = tifs
  rc = ingest_cli.main(["--source", "geotiff", "--input", str(root / "River"), "--bands",
                        "eurosat", "--expect_shape", "16,16", "--out", str(tmp_path / "o"),
                        "--shards", "1"])
  assert rc == 1
  err = capsys.readouterr().err
  assert err.startswith("ingest failed: ") and any(
      n in err for n in ("big.tif", "int32.tif", "crs.tif", "empty.tif"))
  rc = ingest_cli.main(["--source", "geotiff", "--input", str(root / "River"), "--bands",
                        "eurosat", "--expect_shape", "16,16", "--out", str(tmp_path / "o"),
                        "--shards", "1", "--skip_bad", "--label_from_dir", "--classes",
                        "eurosat"])
  # River/: big.tif, int32.tif, empty.tif are bad; crs.tif is fine without --expect_crs.
  out = json.loads(capsys.readouterr().out)
  assert rc == 0 and out["records"] == 2 and out["skipped"] == 3


def _unknown_label(folder):
  meta = next(folder.glob("*_labels_metadata.json"))
  d = json.loads(meta.read_text())
  d["labels"] = list(d.get("labels", [])) + ["Moon craters"]
  meta.write_text(json.dumps(d))
  return meta


def test_unknown_bigearthnet_class_names_the_labels_file_and_skip_bad_skips(example_dir,
                                                                          tmp_path, capsys):
  root = tmp_path / "ben"
  patches = bigearthnet.list_bigearthnet_patches(example_dir)[:2]
  for src in patches:
    shutil.copytree(src, root / src.name)
  for p in root.rglob("*"):
    p.chmod(0o644)
  meta = _unknown_label(root / patches[0].name)
  with pytest.raises(BadInputError, match="Moon craters") as err:
    bigearthnet.read_bigearthnet_patch(root / patches[0].name)
  assert err.value.path == str(meta) and err.value.field == "labels"
  from spectralgpt_jax.__main__ import main as cli
  assert cli(["ingest", "--source", "bigearthnet", "--input", str(root), "--out",
              str(tmp_path / "s"), "--shards", "1"]) == 1
  err_lines = capsys.readouterr().err.strip().splitlines()
  assert len(err_lines) == 1 and str(meta) in err_lines[0], err_lines
  manifest = ingest.ingest("bigearthnet", [str(root)], str(tmp_path / "s2"), num_shards=1,
                           skip_bad=True)
  assert manifest["num_records"] == 1
  assert len(manifest["skipped"]) == 1 and "Moon craters" in json.dumps(manifest["skipped"])
