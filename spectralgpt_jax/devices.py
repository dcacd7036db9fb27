"""Dense bf16 peak throughput of accelerator devices, keyed by what `jax.Device.device_kind`
reads on the real chips (v5p chips read "TPU v5", v5e "TPU v5 lite").

The one table: training's MFU (train/metrics.py) and the compile targets (compile/targets.py)
read it. Vendor figures, TFLOP/s per device, without sparsity. Imports nothing.
"""

from __future__ import annotations

TPU_V4, TPU_V5E, TPU_V5P, TPU_V6E = "TPU v4", "TPU v5 lite", "TPU v5", "TPU v6 lite"
H100, H200 = "NVIDIA H100 80GB HBM3", "NVIDIA H200"

PEAK_BF16_TFLOPS: dict[str, float] = {
    TPU_V4: 275.0, TPU_V5E: 197.0, TPU_V5P: 459.0, TPU_V6E: 918.0,
    H100: 989.4, H200: 989.4,
}
# GPUs whose device_kind carries a memory or form-factor suffix: matched by prefix (longest
# first), e.g. "NVIDIA A100-SXM4-80GB". TPU kinds are matched exactly only.
GPU_PEAK_PREFIXES: dict[str, float] = {
    "NVIDIA H200": 989.4, "NVIDIA H100 PCIe": 756.0, "NVIDIA H100": 989.4,
    "NVIDIA A100": 312.0, "NVIDIA L4": 121.0,
}


def peak_bf16_tflops(device_kind: str) -> float | None:
  """Dense bf16 TFLOP/s of one device of this kind, or None if the kind is not in the table."""
  if device_kind in PEAK_BF16_TFLOPS:
    return PEAK_BF16_TFLOPS[device_kind]
  for prefix in sorted(GPU_PEAK_PREFIXES, key=len, reverse=True):
    if device_kind.startswith(prefix):
      return GPU_PEAK_PREFIXES[prefix]
  return None
