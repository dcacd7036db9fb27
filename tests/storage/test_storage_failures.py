"""Object-store failures against real servers: denied access (a moto server that enforces
credentials) and a server that goes away in the middle of a read end as one line naming the
URL and what to do, through the commands' failure handling."""

import pytest

from data_pipelines import local_object_store, storage
from data_pipelines.tfrecord import RecordReader, TFRecordWriter
from spectralgpt_jax.cli import inspect as inspect_cli


@pytest.mark.slow
def test_denied_access_is_one_line_naming_the_url(capsys, monkeypatch):
  pytest.importorskip("moto")
  monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore: no retries of the refusal
  # The first two requests (the start probe, creating the bucket) are free; after it moto checks credentials, and
  # the client's made-up key is refused as by a real S3.
  with local_object_store.s3_server(INITIAL_NO_AUTH_ACTION_COUNT="2") as store, \
       store.environ():
    url = storage.join(store.make_bucket("test-denied"), "ben")
    with pytest.raises(PermissionError, match=r"s3://test-denied/ben/manifest.json: access "
                       r"denied .*; check the credentials"):
      storage.read_bytes(storage.join(url, "manifest.json"))
    assert inspect_cli.main([url]) == 1
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("inspect failed: s3://test-denied/ben"), lines
  assert "access denied" in lines[0] and "check the credentials" in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_server_gone_mid_read_names_the_shard(kind, tmp_path, monkeypatch):
  """A shard larger than the read block: the first records come, then the server dies."""
  monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
  servers = {"s3": local_object_store.s3_server, "gcs": local_object_store.gcs_emulator}
  with servers[kind]() as store, store.environ():
    shard = storage.join(store.make_bucket("test-gone"), "data-00000-of-00001.tfrecord")
    local = tmp_path / "shard.tfrecord"
    with open(local, "wb") as f:
      writer = TFRecordWriter(f)
      for i in range(64):
        writer.write(bytes([i]) * 65536)
    storage.write_bytes(shard, local.read_bytes())
    reader = RecordReader(shard)
    reader._f = storage.open(shard, "rb", block_size=1 << 20)  # pylint: disable=protected-access
    assert reader.read_next() == (0, bytes([0]) * 65536)
    store.stop()
    with pytest.raises(OSError, match=rf"{shard}: lost the connection to the .* endpoint "
                       r"http://127.0.0.1:\d+ .*then rerun"):
      while reader.read_next() is not None:
        pass
