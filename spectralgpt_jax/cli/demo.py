"""`make demo`: real Sentinel-2 patches -> TFRecord shards -> a short CPU pretraining run.

  python -m spectralgpt_jax demo --input ../shared/data/bigearthnet_s2_example --workdir runs/demo

1. checks the shipped real data against their SHA256SUMS.txt and writes TFRecord shards (the
   same code as `python -m spectralgpt_jax ingest`): the BigEarthNet patches (`<workdir>/shards`),
   the EuroSAT-MS subset split as configs/eval/splits/eurosat_subset_{train,test}.txt
   (`<workdir>/eurosat_train`, `<workdir>/eurosat_test`) and 96 px crops of both dates of the
   OSCD training cities (`<workdir>/oscd_crops`; data_pipelines/oscd_crops.py);
2. pretrains `configs/pretrain/tiny_s2.py` (`<workdir>/run`) on the BigEarthNet patches, the
   EuroSAT training files and the OSCD crops, never on the EuroSAT test files nor the OSCD
   test cities (`make demo-eval` scores those): checkpoints, TensorBoard logs and
   reconstruction panels, in a few minutes on a laptop-class CPU;
3. prints where everything is and the command that continues the run.
Running it again continues the same run (it is resumable like any training run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from spectralgpt_jax.cli import _failures, _flags, _workdir_lock

HELP = "ingest the example patches and pretrain the tiny model on CPU (the `make demo` job)"
RENAMED_FLAGS = {"--data": "--input"}
EXAMPLES = ("python -m spectralgpt_jax demo --input ../shared/data/bigearthnet_s2_example "
            "--workdir runs/demo",)


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("demo", HELP, EXAMPLES)
  p.add_argument("--input", required=True, help="folder of BigEarthNet-S2 patches with "
                 "SHA256SUMS.txt (../shared/data/bigearthnet_s2_example)")
  p.add_argument("--workdir", required=True, help="output folder (shards/ and run/ inside)")
  p.add_argument("--eurosat", default="auto", help="EuroSAT-MS subset folder ('auto': "
                 "eurosat_ms_subset beside --input if present; '' = leave out)")
  p.add_argument("--oscd", default="auto", help="OSCD folder ('auto': oscd_s2_subset beside "
                 "--input if present; '' = leave out)")
  p.add_argument("--steps", type=int, default=300, help="optimizer steps to train to")
  p.add_argument("--shards", type=int, default=3, help="TFRecord shards to write")
  return p


def _ingest(data: str, out: str, shards: int) -> None:
  from data_pipelines import bigearthnet, ingest  # pylint: disable=g-import-not-at-top
  checked = bigearthnet.verify_sha256sums(data)
  print(f"[demo] verified {checked} files of {data} against SHA256SUMS.txt", flush=True)
  manifest = ingest.ingest("bigearthnet", [data], out, num_shards=shards)
  n = manifest.get("num_records", "?")
  print(f"[demo] {n} patches -> {shards} TFRecord shards in {out}", flush=True)


def _beside(flag: str, data: str, name: str) -> str:
  if flag != "auto":
    return flag
  path = os.path.join(os.path.dirname(os.path.abspath(data.rstrip("/"))), name)
  return path if os.path.isdir(path) else ""


def _ingest_extra(args, workdir: str) -> list[str]:
  """EuroSAT train / test shards and OSCD training-city crops; returns the shard dirs to
  pretrain on (EuroSAT train, OSCD crops)."""
  # pylint: disable=g-import-not-at-top
  from data_pipelines import ingest, oscd, oscd_crops, shard_writer
  from data_pipelines.datasets import eurosat
  from data_pipelines.checksums import verify_sha256sums
  from configs.eval.oscd import TEST_CITIES   # scored by `make demo-eval`: never pretrained on
  from configs.eval.tiny_sweep import SPLITS
  # pylint: enable=g-import-not-at-top
  pretrain = []
  root = _beside(args.eurosat, args.input, "eurosat_ms_subset")
  if root:
    print(f"[demo] verified {eurosat.verify(root)} files of {root}", flush=True)
    for split in ("train", "test"):
      out = os.path.join(workdir, f"eurosat_{split}")
      split_file = os.path.join(SPLITS, f"eurosat_subset_{split}.txt")
      m = ingest.ingest("eurosat", [root], out, num_shards=2, split_file=split_file)
      print(f"[demo] {m['num_records']} EuroSAT {split} files -> {out}", flush=True)
    pretrain.append(os.path.join(workdir, "eurosat_train"))
  root = _beside(args.oscd, args.input, "oscd_s2_subset")
  if root:
    print(f"[demo] verified {verify_sha256sums(root)} files of {root}", flush=True)
    cities = [c for c in oscd.city_names(root) if c not in TEST_CITIES.split(",")]
    out = os.path.join(workdir, "oscd_crops")
    m = shard_writer.write_shards(oscd_crops.crop_items(root, cities), out, num_shards=2,
                                  extra={"source_type": "oscd_crops", "cities": cities})
    print(f"[demo] {m['num_records']} crops of {cities} (both dates) -> {out}", flush=True)
    pretrain.append(out)
  return pretrain


def _num_records(dirs: list[str]) -> int:
  from data_pipelines import sources  # pylint: disable=g-import-not-at-top
  return sum(int(sources.read_manifest(d)["num_records"]) for d in dirs)


def _continue_command(workdir: str, shards: str, steps: int) -> str:
  return (f"{sys.executable} -m spectralgpt_jax train --config configs/pretrain/tiny_s2.py "
          f"--workdir {workdir} --config.data.paths={shards} --config.total_steps={steps}")


@_failures.command("demo")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  if not os.path.isfile(os.path.join(args.input, "SHA256SUMS.txt")):
    raise _flags.UsageError(f"--input {args.input} has no SHA256SUMS.txt; pass the "
                            "bigearthnet_s2_example folder")
  from spectralgpt_jax import hostmem  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.cli.train import setup_logging  # pylint: disable=g-import-not-at-top
  setup_logging()
  hostmem.retain_freed_host_memory()  # as `train` does, before jax allocates
  workdir = os.path.abspath(args.workdir)
  with _workdir_lock.held(workdir, "demo"):  # shards and the run: one writer
    return _run(args, workdir)


def _run(args, workdir: str) -> int:
  """Ingests the shipped data into `workdir`, pretrains, prints where everything is."""
  t0 = time.perf_counter()
  shards, run = os.path.join(workdir, "shards"), os.path.join(workdir, "run")
  _ingest(args.input, shards, args.shards)
  data = [shards] + _ingest_extra(args, workdir)
  shards = ",".join(f"{d}/*.tfrecord" for d in data) if len(data) > 1 else shards

  from configs.pretrain import tiny_s2  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train import loop  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  config = tiny_s2.get_config()
  config.data.paths = shards  # num_examples: from the manifest(s)
  config.num_examples = _num_records(data)
  config.total_steps = args.steps
  print(f"[demo] pretraining {config.model.name} at {config.image_size} px for {args.steps} "
        f"steps on {jax.device_count()} {jax.devices()[0].platform} device(s) ...", flush=True)
  last = loop.train(config, run)
  minutes = (time.perf_counter() - t0) / 60
  panels = sorted(os.listdir(os.path.join(run, "panels"))) if os.path.isdir(
      os.path.join(run, "panels")) else []
  result = (f"loss {last['loss']:.4f}" if "loss" in last
            else "nothing to do: already trained that far (raise --steps)")
  print(f"""
[demo] done in {minutes:.1f} min: step {last.get('step')}, {result}
  checkpoints        {os.path.join(run, 'checkpoints')}
  TensorBoard logs   {os.path.join(run, 'tensorboard')}   (tensorboard --logdir {run})
  panels (PNG)       {os.path.join(run, 'panels')}   latest: {panels[-1] if panels else 'none'}
  TFRecord shards    {shards}
Continue this run (it resumes from the latest checkpoint; the longer run gets a new, longer
learning-rate schedule, which the log announces; add --config.checkpoint.keep_schedule=True
to keep this one):
  {_continue_command(run, shards, 2 * args.steps)}""", flush=True)
  return 0

