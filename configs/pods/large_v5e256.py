"""SpectralGPT large MAE, stage 2 (128 px): the v5e-256 preset.

Runs on a v5e-256 slice (256 chips, 15.75 GiB usable HBM each) as data 16 x
fsdp 16: 16-way FSDP inside 16 data-parallel groups (pure FSDP over 256 chips would cut the
model's layers into shards of a few columns).

  python -m spectralgpt_jax compile \
      --target v5e-256 --config configs/pods/large_v5e256.py[:batch=2048]
  python -m spectralgpt_jax train --distributed \
      --config configs/pods/large_v5e256.py --workdir ...

PLANS (global batch -> remat, accum_steps) are what `compile --plan` chose on 2026-11-30 with
10% of device memory left free, attention "auto" (splash); per-device memory measured
by the compiler (BENCHMARKS.md, "Accelerator attention, memory plans and pod presets"):
  4096: remat none, accum_steps 1 (16 examples per chip per microbatch): 9.32 of 15.75 GiB
  2048: remat none, accum_steps 1 (8 examples per chip per microbatch): 4.62 of 15.75 GiB
"""

from configs.pods import pod

MESH = {"data": 16, "fsdp": 16, "tensor": 1}
PLANS = {4096: ("none", 1), 2048: ("none", 1)}


def get_config(arg: str | None = None):
  return pod.pod_config("large", arg, mesh=MESH, plans=PLANS)
