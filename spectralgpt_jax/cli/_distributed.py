"""Multi-host flags shared by `train` and `evaluate`: --distributed (or
$SPECTRALGPT_DISTRIBUTED=1) calls jax.distributed.initialize(), which finds the coordinator
itself on TPU pods, SLURM and Kubernetes, or takes --coordinator_address / --num_processes /
--process_id; --num_cpu_devices simulates devices (tests, local multi-process runs)."""

from __future__ import annotations

import os

ENV_DISTRIBUTED = "SPECTRALGPT_DISTRIBUTED"


def add_flags(p) -> None:
  """Adds the multi-host flags to the argparse parser `p` (default of --distributed read now,
  from the environment)."""
  g = p.add_argument_group("multi-host")
  g.add_argument("--distributed", action="store_true",
                 default=os.environ.get(ENV_DISTRIBUTED, "") not in ("", "0"),
                 help=f"call jax.distributed.initialize() (default: off, on when "
                 f"${ENV_DISTRIBUTED}=1)")
  g.add_argument("--coordinator_address", default=None, metavar="HOST:PORT",
                 help="address of process 0 (default: found by jax.distributed)")
  g.add_argument("--num_processes", type=int, default=None,
                 help="number of processes (default: found by jax.distributed)")
  g.add_argument("--process_id", type=int, default=None,
                 help="this process (default: found by jax.distributed)")
  g.add_argument("--num_cpu_devices", type=int, default=None,
                 help="simulate N CPU devices per process (tests, local multi-process runs; "
                 "default: the real devices)")


def initialize(fv) -> None:
  """Applies --num_cpu_devices and, with --distributed, joins the other processes (`fv`: the
  parsed arguments)."""
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
