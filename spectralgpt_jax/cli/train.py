r"""`python -m spectralgpt_jax train --config configs/pretrain/<file>.py[:arg] --workdir DIR`.

Overrides: `--config.total_steps=500 --config.optim.blr=1e-4 --config.mesh.fsdp=4` (the config
is locked: a misspelled field fails); `--print_config` prints the result and exits. Running
again with the same --workdir resumes from its latest checkpoint; a changed learning-rate
schedule (total_steps, lr, warmup) is announced, and `--config.checkpoint.keep_schedule=True`
keeps the checkpoint's. Multi-host: pass --distributed (or set SPECTRALGPT_DISTRIBUTED=1) on
every host; jax.distributed then finds the coordinator itself on TPU pods, SLURM and
Kubernetes, or takes --coordinator_address/--num_processes/--process_id.

Examples:
  python -m spectralgpt_jax train --config configs/pretrain/tiny_s2.py --workdir runs/tiny \
      --config.data.paths=runs/demo/shards
  python -m spectralgpt_jax train --config configs/pretrain/spectralgpt_base_96.py \
      --workdir runs/base96 --config.data.paths=/data/fmow_shards --print_config
"""

from __future__ import annotations

import sys

from spectralgpt_jax.cli import _distributed

HELP = "pretrain an MAE or fine-tune a classifier from a config (resumes); see docs/training.md"


def build_flags():
  """A private FlagValues (nothing registered globally at import)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "config file[:arg] (required); override "
                                  "fields with --config.field=value", flag_values=fv,
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "run directory: checkpoints, tensorboard, panels "
                      "(required)", flag_values=fv)
  flags.DEFINE_bool("print_config", False, "print the resolved config (after overrides) and "
                    "exit", flag_values=fv)
  _distributed.define_flags(fv)
  return fv


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


def main(argv: list[str]) -> int:
  from absl import flags, logging  # pylint: disable=g-import-not-at-top
  fv = build_flags()
  if any(a in ("-h", "--help", "-help") for a in argv):
    print(__doc__ + "\n" + fv.get_help())
    return 0
  try:
    fv(["train"] + list(argv))
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
    # a misspelled override raises AttributeError/KeyError from inside the locked config
    msg = " ".join(str(e.args[0] if e.args else e).replace("\\n", " ").strip("'\"").split()).replace("\\'", "'")
    print(f"train failed: bad flag or --config override: {msg} [see --help; usage: python -m "
          "spectralgpt_jax train --config FILE[:ARG] --workdir DIR [--config.field=value ...]]",
          file=sys.stderr)
    return 2
  if fv.config is not None and fv.print_config:
    print(fv.config)
    return 0
  if fv.config is None or not fv.workdir:
    print("train: --config and --workdir are required", file=sys.stderr)
    return 2
  setup_logging()
  from spectralgpt_jax import hostmem  # pylint: disable=g-import-not-at-top
  if hostmem.retain_freed_host_memory():  # before jax allocates: no per-step page faults
    logging.info("host allocator: freed memory is kept for reuse (spectralgpt_jax/hostmem.py)")
  _distributed.initialize(fv)
  import jax  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train import loop  # pylint: disable=g-import-not-at-top
  logging.info("process %d/%d, %d local / %d global devices (%s); compilation cache: %s",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), jax.devices()[0].device_kind,
               jax.config.jax_compilation_cache_dir or "off")
  try:
    loop.train(fv.config, fv.workdir)
  except loop.TrainingDiverged as e:
    logging.error("%s", e)
    return 1
  finally:
    _distributed.shutdown(fv)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
