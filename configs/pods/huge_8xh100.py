"""SpectralGPT huge MAE, stage 2 (128 px), on one node of 8 H100 80GB (SXM), fsdp 8.

  python -m spectralgpt_jax compile --target 8xh100 --config configs/pods/huge_8xh100.py[:batch=2048]
  python -m spectralgpt_jax train --distributed --config configs/pods/huge_8xh100.py --workdir ...

PLANS: global batch -> (remat, accum_steps), from `compile --plan` (10% headroom, splash /
cuDNN attention; BENCHMARKS.md, "Pod presets"). Measured per device: 4096: 39.44 GiB of 79.10 per GPU (accum 4 needs 75.46: under 10% free); 2048: TODO.
"""

from configs.pods import pod

MESH = {"data": 1, "fsdp": 8, "tensor": 1}
PLANS = {4096: ("none", 8), 2048: ("none", 4)}


def get_config(arg: str | None = None):
  return pod.pod_config("huge", arg, mesh=MESH, plans=PLANS)
