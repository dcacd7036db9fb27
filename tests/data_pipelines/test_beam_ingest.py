"""`ingest --runner beam`: the Beam pipeline (DirectRunner, multi-process) writes the records
and manifest of the one-process path for the real EuroSAT subset and BigEarthNet patches, bad
inputs counted in Beam metrics and listed in the manifest; the project imports without Beam."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest

from data_pipelines import ingest, tfrecord

REPO = pathlib.Path(__file__).resolve().parents[2]
MULTI = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"
EUROSAT = REPO.parent / "shared" / "data" / "eurosat_ms_subset"


@pytest.fixture(autouse=True)
def _workers_import_this_checkout(monkeypatch):
  """Beam's worker processes find data_pipelines through PYTHONPATH, as a user's would."""
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
      [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))


def _eurosat_with_an_empty_file(tmp_path) -> tuple[pathlib.Path, str]:
  """Three classes of the EuroSAT subset (linked) with one image replaced by an empty file."""
  if not EUROSAT.is_dir():
    pytest.skip(f"EuroSAT subset not found at {EUROSAT}")
  root = tmp_path / "eurosat"
  for tif in sorted(t for c in ("Forest", "Highway", "River") for t in EUROSAT.glob(f"{c}/*.tif")):
    (root / tif.parent.name).mkdir(parents=True, exist_ok=True)
    (root / tif.parent.name / tif.name).symlink_to(tif)
  bad = sorted(root.glob("River/*.tif"))[3]
  bad.unlink()
  bad.write_bytes(b"")
  return root, str(bad)


def _record_digests(out) -> list[str]:
  """sha256 of every stored record, sorted (the record set, whatever the shard order)."""
  return sorted(hashlib.sha256(data).hexdigest()
                for f in pathlib.Path(out).glob("*.tfrecord")
                for _, data in tfrecord.iter_records(f))


def _same_dataset(beam_out, local_out, beam_manifest, local_manifest) -> None:
  assert _record_digests(beam_out) == _record_digests(local_out)
  assert {p.name: p.read_bytes() for p in pathlib.Path(beam_out).glob("*.tfrecord")} == {
      p.name: p.read_bytes() for p in pathlib.Path(local_out).glob("*.tfrecord")}
  on_disk = json.loads((pathlib.Path(beam_out) / "manifest.json").read_text())
  drop = ("created", "beam_metrics")
  assert {k: v for k, v in beam_manifest.items() if k not in drop} == {
      k: v for k, v in on_disk.items() if k not in drop}
  assert {k: v for k, v in on_disk.items() if k not in drop} == {
      k: v for k, v in local_manifest.items() if k not in drop}


@pytest.mark.parametrize("options", [
    pytest.param("--runner=DirectRunner", id="in_process"),
    pytest.param(MULTI, id="multi_process", marks=pytest.mark.slow)])   # ~10 s of start-up
def test_beam_matches_local_ingest_on_eurosat_and_counts_the_bad_input(tmp_path, options):
  from data_pipelines import beam_ingest
  root, bad = _eurosat_with_an_empty_file(tmp_path)
  local = ingest.ingest("eurosat", [str(root)], tmp_path / "local", num_shards=3, skip_bad=True)
  beam = beam_ingest.ingest_beam("eurosat", [str(root)], tmp_path / "beam", num_shards=3,
                                 skip_bad=True, beam_options=options)
  _same_dataset(tmp_path / "beam", tmp_path / "local", beam, local)
  # Independent of both: every file of the subset but the empty one, once.
  files = {str(p) for p in root.glob("*/*.tif")}
  assert beam["num_records"] == len(files) - 1 == len(_record_digests(tmp_path / "beam"))
  assert [(s["path"], s["field"]) for s in beam["skipped"]] == [(bad, "file")]
  metrics = beam["beam_metrics"]
  assert metrics["records"] == len(files) - 1 and metrics["bad_inputs"] == 1
  assert metrics["shards_written"] == 3 and metrics["bad_input_keys"] == [bad]


_WITHOUT_BEAM = """
import sys
import spectralgpt_jax, spectralgpt_jax.cli.ingest, data_pipelines.ingest, data_pipelines.beam_ingest
assert "apache_beam" not in sys.modules, "importing the project imported apache_beam"
sys.modules["apache_beam"] = None   # as if the beam extra were not installed
from spectralgpt_jax.cli import ingest
sys.exit(ingest.main(["--source", "eurosat", "--input", {root!r}, "--out", {out!r},
                      "--shards", "1", "--runner", "beam"]))
"""


def test_project_imports_without_beam_and_runner_beam_names_the_extra(tmp_path):
  code = _WITHOUT_BEAM.format(root=str(EUROSAT), out=str(tmp_path / "out"))
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        cwd=REPO, timeout=120)
  assert proc.returncode == 1, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if "failed" in l]
  assert len(lines) == 1 and "pip install spectralgpt-jax[beam]" in lines[0], proc.stderr
  assert not (tmp_path / "out" / "manifest.json").exists()


def test_workers_flag_is_refused_with_the_beam_runner(tmp_path, capsys):
  from spectralgpt_jax.cli import ingest as ingest_cli
  rc = ingest_cli.main(["--source", "eurosat", "--input", str(EUROSAT), "--out",
                        str(tmp_path / "out"), "--shards", "2", "--runner", "beam",
                        "--workers", "2"])
  assert rc == 2 and "--workers is for --runner local" in capsys.readouterr().err
  assert not (tmp_path / "out").exists()


@pytest.mark.slow   # ~3 Beam worker start-ups plus the BigEarthNet reads
def test_cli_beam_and_local_workers_write_the_same_bigearthnet_shards(tmp_path, example_dir,
                                                                      capsys):
  from spectralgpt_jax.cli import ingest as ingest_cli
  common = ["--source", "bigearthnet", "--input", str(example_dir), "--shards", "3",
            "--verify_sha256"]
  assert ingest_cli.main(common + ["--out", str(tmp_path / "one"), "--workers", "1"]) == 0
  assert ingest_cli.main(common + ["--out", str(tmp_path / "two"), "--workers", "2"]) == 0
  assert ingest_cli.main(common + ["--out", str(tmp_path / "beam"), "--runner", "beam",
                                   "--beam_options", MULTI]) == 0
  printed = [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
  assert [p["records"] for p in printed] == [6, 6, 6]
  manifests = {name: json.loads((tmp_path / name / "manifest.json").read_text())
               for name in ("one", "two", "beam")}
  _same_dataset(tmp_path / "two", tmp_path / "one", manifests["two"], manifests["one"])
  _same_dataset(tmp_path / "beam", tmp_path / "one", manifests["beam"], manifests["one"])
  keys = {s["file"] for s in manifests["beam"]["shards"]}
  assert keys == {f"data-0000{k}-of-00003.tfrecord" for k in range(3)}


@pytest.mark.slow
def test_beam_without_skip_bad_raises_the_bad_input_and_resumes(tmp_path):
  from data_pipelines import beam_ingest
  from data_pipelines.errors import BadInputError
  root, bad = _eurosat_with_an_empty_file(tmp_path)
  out = tmp_path / "beam"
  with pytest.raises(BadInputError) as e:
    beam_ingest.ingest_beam("eurosat", [str(root)], out, num_shards=4, beam_options=MULTI)
  assert e.value.path == bad and e.value.field == "file"
  assert not (out / "manifest.json").exists() and not list(out.glob(".tmp*"))
  written = sorted(p.name for p in out.glob("*.tfrecord"))
  assert len(written) == 3   # the other shards are complete
  good = pathlib.Path(bad)
  good.write_bytes((EUROSAT / good.parent.name / good.name).read_bytes())
  mtimes = {n: (out / n).stat().st_mtime_ns for n in written}
  beam = beam_ingest.ingest_beam("eurosat", [str(root)], out, num_shards=4, beam_options=MULTI)
  assert {n: (out / n).stat().st_mtime_ns for n in written} == mtimes   # not rewritten
  assert beam["beam_metrics"]["shards_written"] == 1
  local = ingest.ingest("eurosat", [str(root)], tmp_path / "local", num_shards=4)
  _same_dataset(out, tmp_path / "local", beam, local)


@pytest.mark.slow   # Beam start-up
def test_beam_writes_array_record_shards_equal_to_the_local_ones(tmp_path):
  """The record format reaches Beam's workers: ArrayRecord shards with the local run's records
  and manifest format (not TFRecord files under another name)."""
  from data_pipelines import beam_ingest, record_formats
  root, _ = _eurosat_with_an_empty_file(tmp_path)
  local = ingest.ingest("eurosat", [str(root)], tmp_path / "local", num_shards=2, skip_bad=True,
                        record_format="array_record")
  beam = beam_ingest.ingest_beam("eurosat", [str(root)], tmp_path / "beam", num_shards=2,
                                 skip_bad=True, record_format="array_record")
  assert beam["format"] == local["format"] == record_formats.manifest_format("array_record")

  def digests(out):
    files = sorted(pathlib.Path(out).glob("*.array_record"))
    assert len(files) == 2
    return sorted(hashlib.sha256(r).hexdigest()
                  for f in files for r in record_formats.iter_records(str(f), "array_record"))

  assert digests(tmp_path / "beam") == digests(tmp_path / "local")
  assert len(digests(tmp_path / "beam")) == beam["num_records"] == local["num_records"]
