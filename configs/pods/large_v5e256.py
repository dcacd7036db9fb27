"""SpectralGPT large MAE, stage 2 (128 px), on a v5e-256 slice (256 chips, 15.75 GiB each), data 16 x fsdp 16.

  python -m spectralgpt_jax compile --target v5e-256 --config configs/pods/large_v5e256.py[:batch=2048]
  python -m spectralgpt_jax train --distributed --config configs/pods/large_v5e256.py --workdir ...

PLANS: global batch -> (remat, accum_steps), from `compile --plan` (10% headroom, splash /
cuDNN attention; BENCHMARKS.md, "Pod presets"). Measured per device: 4096: TODO; 2048: TODO.
"""

from configs.pods import pod

MESH = {"data": 16, "fsdp": 16, "tensor": 1}
PLANS = {4096: ("none", 1), 2048: ("none", 1)}


def get_config(arg: str | None = None):
  return pod.pod_config("large", arg, mesh=MESH, plans=PLANS)
