"""SpectralGPT large MAE, stage 2 (128 px): the 8xh100 preset.

Runs on one node of 8 NVIDIA H100 80GB (SXM), fsdp 8. For N nodes keep the
per-GPU microbatch: --config.mesh.data=N and accum_steps / N (docs/training.md).

  python -m spectralgpt_jax compile \
      --target 8xh100 --config configs/pods/large_8xh100.py[:batch=2048]
  python -m spectralgpt_jax train --distributed \
      --config configs/pods/large_8xh100.py --workdir ...

PLANS (global batch -> remat, accum_steps) are what `compile --plan` chose on 2026-11-30 with
10% of device memory left free, attention "auto" (cuDNN); per-device memory measured
by the compiler (BENCHMARKS.md, "Accelerator attention, memory plans and pod presets"):
  4096: remat none, accum_steps 4 (128 examples per GPU per microbatch): 56.14 of 79.10 GiB
  2048: remat none, accum_steps 2 (128 examples per GPU per microbatch): 55.76 of 79.10 GiB
"""

from configs.pods import pod

MESH = {"data": 1, "fsdp": 8, "tensor": 1}
PLANS = {4096: ("none", 4), 2048: ("none", 2)}


def get_config(arg: str | None = None):
  return pod.pod_config("large", arg, mesh=MESH, plans=PLANS)
