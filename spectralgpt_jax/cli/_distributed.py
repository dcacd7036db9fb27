"""Multi-host flags shared by `train` and `evaluate`: --distributed (or
$SPECTRALGPT_DISTRIBUTED=1) calls jax.distributed.initialize(), which finds the coordinator
itself on TPU pods, SLURM and Kubernetes, or takes --coordinator_address / --num_processes /
--process_id; --num_cpu_devices simulates devices (tests, local multi-process runs)."""

from __future__ import annotations

import os

ENV_DISTRIBUTED = "SPECTRALGPT_DISTRIBUTED"


def define_flags(fv) -> None:
  """Registers the multi-host flags on the absl FlagValues `fv`."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_bool("distributed", os.environ.get(ENV_DISTRIBUTED, "") not in ("", "0"),
                    f"call jax.distributed.initialize() (default from ${ENV_DISTRIBUTED})",
                    flag_values=fv)
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (default: found "
                      "by jax.distributed)", flag_values=fv)
  flags.DEFINE_integer("num_processes", None, "number of processes (default: found by "
                       "jax.distributed)", flag_values=fv)
  flags.DEFINE_integer("process_id", None, "this process (default: found by jax.distributed)",
                       flag_values=fv)
  flags.DEFINE_integer("num_cpu_devices", None, "simulate N CPU devices per process (tests, "
                       "local multi-process runs; default: the real devices)", flag_values=fv)


def initialize(fv) -> None:
  """Applies --num_cpu_devices and, with --distributed, joins the other processes."""
  import jax  # pylint: disable=g-import-not-at-top
  if fv.num_cpu_devices:
    jax.config.update("jax_num_cpu_devices", fv.num_cpu_devices)
  if fv.distributed:
    kwargs = {k: getattr(fv, k) for k in ("coordinator_address", "num_processes", "process_id")
              if getattr(fv, k) is not None}
    jax.distributed.initialize(**kwargs)


def shutdown(fv) -> None:
  if fv.distributed:
    import jax  # pylint: disable=g-import-not-at-top
    jax.distributed.shutdown()
