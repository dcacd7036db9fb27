"""`make demo`: real Sentinel-2 patches -> TFRecord shards -> a short CPU pretraining run.

  python -m spectralgpt_jax demo --input ../shared/data/bigearthnet_s2_example --workdir runs/demo

1. checks the patches against SHA256SUMS.txt and ingests them into TFRecord shards
   (`<workdir>/shards`, the same code as `python -m spectralgpt_jax ingest`);
2. pretrains `configs/pretrain/tiny_s2.py` on them (`<workdir>/run`): checkpoints, TensorBoard
   logs and reconstruction panels, in a few minutes on a laptop-class CPU;
3. prints where everything is and the command that continues the run.
Running it again continues the same run (it is resumable like any training run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from spectralgpt_jax.cli import _failures, _flags

HELP = "ingest the example patches and pretrain the tiny model on CPU (the `make demo` job)"
RENAMED_FLAGS = {"--data": "--input"}
EXAMPLES = ("python -m spectralgpt_jax demo --input ../shared/data/bigearthnet_s2_example "
            "--workdir runs/demo",)


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("demo", HELP, EXAMPLES)
  p.add_argument("--input", required=True, help="folder of BigEarthNet-S2 patches with "
                 "SHA256SUMS.txt (../shared/data/bigearthnet_s2_example)")
  p.add_argument("--workdir", required=True, help="output folder (shards/ and run/ inside)")
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


def _continue_command(workdir: str, shards: str, steps: int) -> str:
  return (f"{sys.executable} -m spectralgpt_jax train --config configs/pretrain/tiny_s2.py "
          f"--workdir {workdir} --config.data.paths={shards} --config.total_steps={steps}")


@_failures.command("demo")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  if not os.path.isfile(os.path.join(args.input, "SHA256SUMS.txt")):
    raise _flags.UsageError(f"--input {args.input} has no SHA256SUMS.txt; pass the "
                            "bigearthnet_s2_example folder")
  from absl import logging  # pylint: disable=g-import-not-at-top
  from data_pipelines import absl_flags  # pylint: disable=g-import-not-at-top
  absl_flags.ensure_parsed()
  logging.set_verbosity(logging.INFO)
  logging.use_absl_handler()
  from spectralgpt_jax import hostmem  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.cli.train import quiet_library_logs  # pylint: disable=g-import-not-at-top
  quiet_library_logs()
  hostmem.retain_freed_host_memory()  # as `train` does, before jax allocates

  t0 = time.perf_counter()
  workdir = os.path.abspath(args.workdir)
  shards, run = os.path.join(workdir, "shards"), os.path.join(workdir, "run")
  _ingest(args.input, shards, args.shards)

  from configs.pretrain import tiny_s2  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train import loop  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  config = tiny_s2.get_config()
  config.data.paths = shards  # num_examples: from its manifest
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

