"""`write_shards(workers=N)` / `ingest --workers N`: shards written in processes are the bytes
one process writes (same plan, same skip decisions), bad inputs are listed or raised, and an
interrupted parallel run resumes."""

import functools
import hashlib
import json
import os
import pathlib

import pytest

from data_pipelines import example_codec, shard_writer, tfrecord
from data_pipelines.errors import BadInputError

import dp_synth

N, SHARDS = 24, 4


def _missing_file(key: str) -> dict:
  raise BadInputError(key, "file", "file not found")


def _other_bands(i: int) -> dict:
  rec = dp_synth.make_record(i)
  rec["bands"] = [f"X{b}" for b in range(len(rec["bands"]))]
  return rec


def _items_with_bad_inputs(first: bool = True
                           ) -> tuple[list[shard_writer.Item], set[str], set[str]]:
  """Synthetic items where (if `first`) the first item of shard 0 and a later item of shard 2
  (missing files) and the first of shard 3 (foreign band names) are bad; all loaders pickle
  (module functions). Returns (items, keys of the bad items, paths their errors name)."""
  items = dp_synth.make_items(N)
  plan = shard_writer.assign_shards(N, SHARDS, 0)
  bad = {int(plan[2][1]): functools.partial(_missing_file, "rec-missing-2"),
         int(plan[3][0]): functools.partial(_other_bands, int(plan[3][0]))}
  if first:
    bad[int(plan[0][0])] = functools.partial(_missing_file, "rec-missing")
  out = [shard_writer.Item(it.key, bad.get(i, it.load)) for i, it in enumerate(items)]
  named = {"rec-missing-2", items[int(plan[3][0])].key} | ({"rec-missing"} if first else set())
  return out, {items[i].key for i in bad}, named


def _record_digests(out) -> list[str]:
  """sha256 of every stored record's bytes (shard by shard, in file order)."""
  return [hashlib.sha256(data).hexdigest()
          for f in sorted(pathlib.Path(out).glob("*.tfrecord"))
          for _, data in tfrecord.iter_records(f)]


def _shard_bytes(out) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(pathlib.Path(out).glob("*.tfrecord"))}


def test_two_processes_write_the_bytes_of_one_and_list_the_same_bad_inputs(tmp_path):
  items, bad_keys, named = _items_with_bad_inputs()
  one = shard_writer.write_shards(items, tmp_path / "one", num_shards=SHARDS, skip_bad=True)
  two = shard_writer.write_shards(items, tmp_path / "two", num_shards=SHARDS, skip_bad=True,
                                  workers=2)
  assert _shard_bytes(tmp_path / "two") == _shard_bytes(tmp_path / "one")
  assert {k: v for k, v in two.items() if k != "created"} == {
      k: v for k, v in one.items() if k != "created"}
  # Independent of both runs: the good items' records, encoded here, are the stored ones.
  good = [it for it in items if it.key not in bad_keys]
  want = sorted(hashlib.sha256(example_codec.encode_record(it.load())).hexdigest()
                for it in good)
  assert sorted(_record_digests(tmp_path / "two")) == want
  assert two["num_records"] == N - 3 and len(two["skipped"]) == 3
  assert {s["path"] for s in two["skipped"]} == named
  assert {s["field"] for s in two["skipped"]} == {"file", "bands"}
  assert two["bands"] == list(dp_synth.make_record(0)["bands"])


@pytest.mark.slow   # a second process pool (spawn start-up)
def test_a_bad_input_in_a_worker_is_raised_as_itself_and_the_run_resumes(tmp_path):
  items, _, _ = _items_with_bad_inputs(first=False)
  out = tmp_path / "out"
  with pytest.raises(BadInputError) as e:   # shard 2 or 3, whichever process fails first
    shard_writer.write_shards(items, out, num_shards=SHARDS, workers=2)
  assert (e.value.path, e.value.field) in {("rec-missing-2", "file"),
                                           (items[int(shard_writer.assign_shards(N, SHARDS, 0)
                                                      [3][0])].key, "bands")}
  assert not (out / shard_writer.MANIFEST).exists() and not list(out.glob(".tmp*"))
  for f in out.glob("*.tfrecord"):   # whatever finished is complete
    info = json.loads((out / ".progress" / f"{f.name}.json").read_text())
    assert len(list(tfrecord.iter_records(f))) == info["records"]
  # The same inputs, fixed: a plan with the same keys, so the run resumes into `out`.
  fixed = dp_synth.make_items(N)
  shard_writer.write_shards(fixed, out, num_shards=SHARDS)
  shard_writer.write_shards(fixed, tmp_path / "clean", num_shards=SHARDS, workers=2)
  assert _shard_bytes(out) == _shard_bytes(tmp_path / "clean")
  assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_default_workers_are_the_cores_but_small_ingests_stay_in_process():
  cores = len(os.sched_getaffinity(0))
  assert shard_writer.default_workers(10) == 1
  assert shard_writer.default_workers(10 ** 7) == cores
  assert shard_writer.default_workers(2 * shard_writer.MIN_ITEMS_PER_PROCESS) == min(cores, 2)
