r"""`python -m spectralgpt_jax train --config configs/pretrain/<file>.py[:arg] --workdir DIR`.

Overrides: `--config.total_steps=500 --config.optim.blr=1e-4 --config.mesh.fsdp=4` (the config
is locked: a misspelled field fails); `--print_config` prints the result and exits. Running
again with the same --workdir resumes from its latest checkpoint; a changed learning-rate
schedule (total_steps, lr, warmup) is announced, and `--config.checkpoint.keep_schedule=True`
keeps the checkpoint's. Multi-host: pass --distributed (or set SPECTRALGPT_DISTRIBUTED=1) on
every host; jax.distributed then finds the coordinator itself on TPU pods, SLURM and
Kubernetes, or takes --coordinator_address/--num_processes/--process_id.

Two commands on one --workdir: the second stops at once, naming the first (cli/_workdir_lock.py).
"""

from __future__ import annotations

import argparse

from spectralgpt_jax.cli import _distributed, _failures, _flags, _workdir_lock

HELP = "pretrain an MAE or fine-tune a classifier from a config (resumes); see docs/training.md"
EXAMPLES = (
    "python -m spectralgpt_jax train --config configs/pretrain/tiny_s2.py --workdir runs/tiny "
    "--config.data.paths=runs/demo/shards",
    "python -m spectralgpt_jax train --config configs/pretrain/spectralgpt_base_96.py "
    "--workdir runs/base96 --config.data.paths=/data/fmow_shards --print_config",
)


def build_parser() -> argparse.ArgumentParser:
  p = _flags.parser("train", __doc__, EXAMPLES)
  _flags.add_config(p, "training config file (configs/pretrain, configs/finetune)")
  p.add_argument("--workdir", required=True,
                 help="run directory: checkpoints, tensorboard, panels")
  _flags.add_allow_unverified(p)
  _distributed.add_flags(p)
  return p


def quiet_library_logs() -> None:
  """Keeps orbax/grain/jax INFO chatter out of the log (their warnings still show)."""
  import logging as std_logging  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top

  class _Filter(std_logging.Filter):
    def filter(self, record):
      noisy = any(f"/{p}/" in record.pathname for p in ("orbax", "grain", "jax", "etils"))
      return record.levelno >= std_logging.WARNING or not noisy

  logging.get_absl_handler().addFilter(_Filter())


def setup_logging() -> None:
  """INFO through absl's handler without the libraries' chatter; absl flags marked parsed
  (grain's workers read them). For every command that runs training or evaluation."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  from data_pipelines import absl_flags  # pylint: disable=g-import-not-at-top
  absl_flags.ensure_parsed()
  logging.set_verbosity(logging.INFO)
  logging.use_absl_handler()
  quiet_library_logs()


@_failures.command("train")
def main(argv: list[str]) -> int:
  args = _flags.parse(build_parser(), argv)
  from spectralgpt_jax.checkpoints import layout  # pylint: disable=g-import-not-at-top
  layout.check_location(args.workdir)   # an s3:// workdir fails here, before anything starts
  setup_logging()
  from absl import logging  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax import hostmem  # pylint: disable=g-import-not-at-top
  if hostmem.retain_freed_host_memory():  # before jax allocates: no per-step page faults
    logging.info("host allocator: freed memory is kept for reuse (spectralgpt_jax/hostmem.py)")
  _distributed.initialize(args)
  import jax  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train import loop  # pylint: disable=g-import-not-at-top
  logging.info("process %d/%d, %d local / %d global devices (%s); compilation cache: %s",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.devices()[0].device_kind,
               jax.config.jax_compilation_cache_dir or "off")
  try:
    # one lock per run: multi-host processes share the workdir, process 0 holds it
    with _workdir_lock.held(args.workdir, "train", enabled=jax.process_index() == 0), \
        _flags.checkpoint_reads(args):
      loop.train(args.config, args.workdir)
  finally:
    _distributed.shutdown(args)
  return 0
