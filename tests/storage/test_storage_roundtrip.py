"""data_pipelines.storage against real servers on loopback (GCS emulator, moto S3): the shipped
BigEarthNet patches ingested into a bucket read back record for record as the local ingest,
with the manifest checks; atomic and create-if-absent writes; the one-line errors for a
missing bucket and a missing object."""

import json

import numpy as np
import pytest

from data_pipelines import inspect_shards, sources, storage
from data_pipelines.tfrecord import iter_records


def _check_shards_match(url, ben_dir):
  """The shard directory at `url` passes the manifest checks and holds, shard for shard, the
  records of the local ingest `ben_dir` byte for byte (CRCs checked on the way)."""
  files, manifest = sources.list_shards(url)
  assert [storage.basename(f) for f in files] == sorted(
      s["file"] for s in json.load(open(f"{ben_dir}/manifest.json"))["shards"])
  assert manifest["num_records"] == 6
  good, problems = sources.verify_shards(files, manifest)
  assert good == files and problems == []
  for f in files:
    local = [d for _, d in iter_records(f"{ben_dir}/{storage.basename(f)}")]
    assert [d for _, d in iter_records(f)] == local
  report = inspect_shards.inspect_dir(url)
  assert report["num_records"] == 6 and report["unlisted_files"] == []
  # Only the shards and the manifest: no staging leftovers, no lock.
  assert storage.listdir(url) == sorted([*(storage.basename(f) for f in files), "manifest.json"])


def _ingest_cli(example_dir, url):
  from spectralgpt_jax.cli import ingest as ingest_cli
  assert ingest_cli.main(["--source", "bigearthnet", "--input", str(example_dir), "--out", url,
                          "--shards", "2"]) == 0


def test_ingest_command_to_gcs_bucket(ben_dir, example_dir, gcs_server):
  with gcs_server.environ():
    url = storage.join(gcs_server.make_bucket("test-ingest"), "ben")
    _ingest_cli(example_dir, url)
    _check_shards_match(url, ben_dir)
    # Shards without their manifest (an upload cut short) are not a dataset.
    storage.remove(storage.join(url, "manifest.json"))
    with pytest.raises(FileNotFoundError, match=r"no manifest.json in gs://test-ingest/ben"):
      sources.list_shards(url)


def test_ingest_command_to_s3_bucket(ben_dir, example_dir, s3_server):
  with s3_server.environ():
    url = storage.join(s3_server.make_bucket("test-ingest"), "ben")
    _ingest_cli(example_dir, url)
    _check_shards_match(url, ben_dir)


def test_writes_reads_and_preconditions(bucket):
  path = storage.join(bucket, "run", "results.json")
  storage.atomic_write(path, lambda f: f.write(b'{"a": 1}'))
  assert storage.read_text(path) == '{"a": 1}' and storage.size(path) == 8
  data = np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
  storage.write_bytes(storage.join(bucket, "run", "blob.bin"), data)
  with storage.open(storage.join(bucket, "run", "blob.bin")) as f:
    f.seek(70_000)
    assert f.read(1000) == data[70_000:71_000]
  assert storage.glob(storage.join(bucket, "run", "*.bin")) == [storage.join(bucket, "run",
                                                                              "blob.bin")]
  assert storage.isdir(storage.join(bucket, "run"))
  storage.remove(storage.join(bucket, "run"), recursive=True)
  assert not storage.exists(path)


def test_create_new_refuses_an_existing_object(bucket):
  """ifGenerationMatch=0 (GCS) / If-None-Match: * (S3): the workdir lock's create-if-absent."""
  assert storage.create_new(f"{bucket}/.lock", b"first")
  assert not storage.create_new(f"{bucket}/.lock", b"second")
  assert storage.read_bytes(f"{bucket}/.lock") == b"first"


def test_missing_bucket_and_object_are_one_line_naming_the_url(bucket, store):
  missing_bucket = store.url("no-such-bucket", "ben", "manifest.json")
  with pytest.raises(FileNotFoundError, match=r"no-such-bucket/ben/manifest.json: the bucket "
                     r".*no-such-bucket does not exist; create it"):
    storage.read_bytes(missing_bucket)
  with pytest.raises(FileNotFoundError, match="no shard matches"):
    sources.list_shards(storage.join(bucket, "ben", "*.tfrecord"))
  with pytest.raises(storage.StorageNotFoundError, match=r"/nothing.bin: no such object; check"):
    storage.read_bytes(storage.join(bucket, "nothing.bin"))
