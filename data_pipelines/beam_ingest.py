"""`ingest --runner beam`: the same ingestion as an Apache Beam pipeline (DirectRunner locally,
Dataflow, Flink or Spark by pipeline options).

The launcher lists the items (`ingest.list_items`: the source's readers), prepares the output
folder and plans the shards exactly as the one-process path does (`shard_writer.prepare`: same
item -> shard assignment, resume, reference bands). The pipeline then writes each pending
shard on a worker with `shard_writer.write_shard` (the same checks and writer), and one final
step writes the manifest (`shard_writer.finish`), so the output is byte-identical to
`ingest --workers N` for the same input. A shard is the unit of parallelism: use at least as
many shards as workers.

Beam metrics (namespace "ingest"): counters `records`, `bad_inputs`, `shards_written`; string
set `bad_input_keys` (the keys skipped with `--skip_bad`; all of them are listed in the
manifest's "skipped"). Without `--skip_bad` a bad input fails its shard (nothing of it is left
looking complete), no manifest is written and the launcher raises the first failure in shard
order (`BadInputError` naming the file); a re-run resumes from the completed shards.

apache-beam is an optional extra (`pip install spectralgpt-jax[beam]`); this module imports it
only when a pipeline runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from collections.abc import Sequence
from typing import Any

from absl import logging

from data_pipelines import example_codec
from data_pipelines import ingest
from data_pipelines import shard_writer
from data_pipelines.errors import BadInputError

NAMESPACE = "ingest"
DEFAULT_OPTIONS = "--runner=DirectRunner"
INSTALL_HINT = "pip install spectralgpt-jax[beam]"


def _beam():
  """The apache_beam module (ImportError naming the extra when it is not installed)."""
  try:
    import apache_beam  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"--runner beam needs Apache Beam: {INSTALL_HINT}") from e
  return apache_beam


def _write_shard(task: tuple[str, list[shard_writer.Item]], out: str, skip_bad: bool,
                 bands: list[str] | None, record_format: str) -> dict[str, Any]:
  """One shard on a worker: its info, or {"file", "error"} for a bad input without skip_bad
  (the shard is not written; the launcher raises it)."""
  from apache_beam.metrics import Metrics  # pylint: disable=g-import-not-at-top
  name, items = task
  try:
    info = shard_writer.write_shard(out, name, items, skip_bad=skip_bad, bands=bands,
                                    record_format=record_format)
  except (BadInputError, example_codec.RecordFormatError) as e:
    err = e.to_json() if isinstance(e, BadInputError) else {
        "path": name, "field": e.field, "error": e.reason}
    err["shard"] = name
    Metrics.counter(NAMESPACE, "failed_shards").inc()
    Metrics.string_set(NAMESPACE, "errors").add(json.dumps(err, sort_keys=True))
    return {"file": name, "error": err}
  Metrics.counter(NAMESPACE, "records").inc(info["records"])
  Metrics.counter(NAMESPACE, "bad_inputs").inc(len(info["skipped"]))
  Metrics.counter(NAMESPACE, "shards_written").inc()
  for bad in info["skipped"]:
    Metrics.string_set(NAMESPACE, "bad_input_keys").add(bad["path"])
  return info


def _write_manifest(infos: list[dict[str, Any]], job: shard_writer.IngestJob,
                    extra: dict[str, Any]) -> int:
  """The final step: the manifest from every shard's info, unless a shard failed."""
  if any("error" in i for i in infos):
    return 0
  job = dataclasses.replace(job, finished={**job.finished, **{i["file"]: i for i in infos}})
  shard_writer.finish(job, extra)
  return 1


def build(pipeline, job: shard_writer.IngestJob, extra: dict[str, Any]) -> None:
  """Adds the ingestion to a Beam `pipeline`: pending shards -> workers -> manifest."""
  beam = _beam()
  light = dataclasses.replace(job, shards=[(name, []) for name, _ in job.shards])
  infos = (pipeline
           | "PendingShards" >> beam.Create(job.pending())
           | "Spread" >> beam.Reshuffle()
           | "WriteShard" >> beam.Map(_write_shard, job.out, job.skip_bad, job.bands,
                                              job.record_format))
  _ = (infos
       | "AllShards" >> beam.combiners.ToList()
       | "WriteManifest" >> beam.Map(_write_manifest, light, extra))


def _metrics(result) -> dict[str, Any]:
  """{counter or string-set name: value} of the "ingest" namespace (committed values)."""
  from apache_beam.metrics.metric import MetricsFilter  # pylint: disable=g-import-not-at-top
  found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
  out: dict[str, Any] = {}
  for kind in ("counters", "string_sets"):
    for m in found.get(kind, []):
      value = m.committed if m.committed is not None else m.attempted
      out[m.key.metric.name] = sorted(value) if kind == "string_sets" else value
  return out


def ingest_beam(source: str, inputs: Sequence[str], out: str | os.PathLike, *, num_shards: int,
                seed: int = 0, skip_bad: bool = False, overwrite: bool = False,
                split_file: str = "", beam_options: str = DEFAULT_OPTIONS,
                record_format: str = "tfrecord", **options: Any) -> dict[str, Any]:
  """`ingest.ingest` as a Beam pipeline run with `beam_options` (a command-line string, e.g.
  "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing");
  returns the manifest, with the pipeline's metrics under "beam_metrics" (not written)."""
  beam = _beam()
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top
  items, extra = ingest.list_items(source, inputs, split_file=split_file, **options)
  # `out` reaches the workers as a string: an object-store URL works once shard_writer writes
  # through data_pipelines.storage; on a cluster it must be a path every worker can write.
  job = shard_writer.prepare(items, os.fspath(out), num_shards=num_shards, seed=seed,
                             skip_bad=skip_bad, overwrite=overwrite,
                             record_format=record_format)
  if job.manifest is not None:
    return job.manifest
  pipeline = beam.Pipeline(options=PipelineOptions(shlex.split(beam_options)))
  build(pipeline, job, extra)
  result = pipeline.run()
  result.wait_until_finish()
  metrics = _metrics(result)
  logging.info("beam ingest metrics: %s", metrics)
  manifest_path = os.path.join(job.out, shard_writer.MANIFEST)
  if not os.path.exists(manifest_path):
    errors = [json.loads(e) for e in metrics.get("errors", [])]
    if errors:
      first = min(errors, key=lambda e: e["shard"])
      more = f" (and {len(errors) - 1} more failed shard(s))" if len(errors) > 1 else ""
      raise BadInputError(first["path"], first["field"], first["error"] + more)
    raise OSError(f"{job.out}: the Beam pipeline finished without writing "
                  f"{shard_writer.MANIFEST}; see the runner's log")
  with open(manifest_path) as f:
    manifest = json.load(f)
  return {**manifest, "beam_metrics": metrics}
