"""Chooses the implementations of the model's products (`models.ops.Ops`) for a compile target.

The choice is made once, outside the model and before tracing, from the platform of the devices
the program is compiled for (a mesh's devices, or an ahead-of-time topology's) and how many
there are; never from the host process (`jax.default_backend()`), which may be a CPU host
compiling for a TPU pod or a GPU. The CPU kernels are built here, outside any trace, with one
log line; a kernel that cannot be built falls back to XLA with a warning saying why.

  attention  "auto": on CPU, sequences of LONG_TOKENS or more (the MAE decoder) use the fused
               C++ kernel in one-device programs (XLA cannot partition a custom call: under a
               sharded jit it would gather the batch) and the cache-blocked XLA version
               otherwise; on TPU, sequences of LONG_TOKENS or more use Pallas splash attention
               (kernels/tpu_attention.py, shard_mapped over the batch); on NVIDIA GPUs, cuDNN
               flash attention (kernels/gpu_attention.py) for bf16/fp16 operands; shorter
               sequences, float32 GPU models and shapes a kernel does not take use plain XLA.
             "xla" | "blocked" | "fused" | "splash" | "cudnn": forced ("blocked" and "fused"
               are CPU-only, "splash" TPU-only, "cudnn" GPU-only; a forced kernel still falls
               back to XLA, statically, for a shape or dtype it does not take).
  matmul     "auto": float32 linear layers through the BLAS kernel on one-device CPU programs
               where a BLAS is installed (the `cpu-blas` extra: the opt-in; measured faster on
               Intel Xeon, not on AMD EPYC, BENCHMARKS.md), XLA's GEMMs otherwise.
             "xla" | "blas": forced ("blas" is CPU-only).
"""

from __future__ import annotations

from typing import Sequence

import jax
from absl import logging

from spectralgpt_jax.kernels import blocked_attention as blocked_lib
from spectralgpt_jax.kernels import build, cpu_attention, cpu_gemm, gpu_attention, tpu_attention
from spectralgpt_jax.models import ops as ops_lib

ATTENTION_IMPLS = ("auto", "xla", "blocked", "fused", "splash", "cudnn")
MATMUL_IMPLS = ("auto", "xla", "blas")
# Implementations that exist for one platform only.
PLATFORM_OF_IMPL = {"blocked": "cpu", "fused": "cpu", "blas": "cpu", "splash": "tpu",
                    "cudnn": "gpu"}
CPU_ONLY = tuple(k for k, p in PLATFORM_OF_IMPL.items() if p == "cpu")
# From this many tokens on, "auto" uses a CPU attention kernel (the 128 px decoder: 1024).
LONG_TOKENS = 256


def long_blocked_attention(q, k, v):
  """CPU, sharded programs: blocked XLA attention for long sequences, plain XLA otherwise."""
  if q.shape[1] >= LONG_TOKENS:
    return blocked_lib.blocked_attention(q, k, v)
  return ops_lib.xla_attention(q, k, v)


def long_fused_attention(q, k, v):
  """CPU, one-device programs: the fused kernel for long sequences whose shape it takes."""
  if q.shape[1] >= LONG_TOKENS and cpu_attention.supports(q):
    return cpu_attention.fused_attention(q, k, v)
  return long_blocked_attention(q, k, v)


def long_splash_attention(q, k, v):
  """TPU: splash attention for long sequences whose shape it takes, plain XLA otherwise."""
  if q.shape[1] >= LONG_TOKENS:
    return tpu_attention.splash_attention(q, k, v)
  return ops_lib.xla_attention(q, k, v)


def platform_of(devices: Sequence[jax.Device]) -> str:
  """'cpu', 'gpu' or 'tpu' for the devices a program is compiled for."""
  platforms = {d.platform.lower() for d in devices}
  if len(platforms) != 1:
    raise ValueError(f"devices of several platforms: {sorted(platforms)}")
  platform = platforms.pop()
  return "gpu" if platform in ("cuda", "rocm") else platform


def _is_amd(device) -> bool:
  """A ROCm GPU (jax may report platform "gpu" for CUDA and ROCm alike; the kind tells)."""
  kind = str(getattr(device, "device_kind", ""))
  return device.platform.lower() == "rocm" or kind.startswith("AMD")


def _check(name: str, value: str, allowed: tuple[str, ...], platform: str) -> None:
  if value not in allowed:
    raise ValueError(f"kernels.{name} must be one of {allowed}, got {value!r}")
  own = PLATFORM_OF_IMPL.get(value)
  if own is not None and own != platform:
    raise ValueError(f"kernels.{name}={value!r} is a {own.upper()} implementation, but the "
                     f"program is compiled for {platform} devices; use 'auto' or 'xla'")


def _attention(choice: str, platform: str, num_devices: int, max_tokens: int | None,
               nvidia: bool = True) -> tuple:
  short = max_tokens is not None and max_tokens < LONG_TOKENS and choice == "auto"
  if platform == "gpu" and not nvidia:  # ROCm: no cuDNN
    if choice == "cudnn":
      raise ValueError("kernels.attention='cudnn' needs NVIDIA GPUs; these are ROCm devices")
    return ops_lib.xla_attention, "xla attention"
  if choice == "xla" or platform not in ("cpu", "tpu", "gpu"):
    return ops_lib.xla_attention, "xla attention"
  if platform == "gpu":  # cuDNN takes short sequences too; float32 falls back inside
    return gpu_attention.cudnn_attention, "cudnn attention (bf16/fp16)"
  if short:
    return ops_lib.xla_attention, "xla attention"
  if platform == "tpu":
    if choice == "splash":
      return tpu_attention.splash_attention, "splash attention"
    return long_splash_attention, f"splash attention from {LONG_TOKENS} tokens"
  if choice == "blocked":
    return blocked_lib.blocked_attention, "blocked attention"
  if choice == "fused" or num_devices == 1:
    if build.available():
      if choice == "fused":
        return cpu_attention.fused_attention, "fused attention"
      return long_fused_attention, f"fused attention from {LONG_TOKENS} tokens"
    if choice == "fused":
      raise build.KernelBuildError("kernels.attention='fused' asked, but the CPU kernels do "
                                   "not build here (see the warning above)")
  return long_blocked_attention, f"blocked attention from {LONG_TOKENS} tokens"


def _matmul(choice: str, platform: str, num_devices: int) -> tuple:
  if platform != "cpu" or choice == "xla":
    return ops_lib.xla_matmul, "xla matmul"
  if choice == "blas":
    cpu_gemm.load()  # raises, saying why, where the BLAS is unavailable
    if num_devices > 1:
      logging.warning("kernels.matmul='blas' in a %d-device program: XLA cannot partition the "
                      "custom call, so every device computes whole products", num_devices)
    return cpu_gemm.matmul, "blas matmul"
  if num_devices == 1 and cpu_gemm.find_library() is not None and cpu_gemm.available():
    return cpu_gemm.matmul, "blas matmul"
  return ops_lib.xla_matmul, "xla matmul"


def ops_for(devices: Sequence[jax.Device], *, attention: str = "auto", matmul: str = "auto",
            max_tokens: int | None = None) -> ops_lib.Ops:
  """The `Ops` for a program compiled for `devices` (e.g. `mesh.devices.flat`).

  `max_tokens`: the longest sequence the program attends over, when known; below LONG_TOKENS
  "auto" attention is plain XLA and no kernel is built.
  """
  devices = list(devices)
  platform = platform_of(devices)
  _check("attention", attention, ATTENTION_IMPLS, platform)
  _check("matmul", matmul, MATMUL_IMPLS, platform)
  nvidia = platform != "gpu" or not any(_is_amd(d) for d in devices)
  attention_fn, attention_name = _attention(attention, platform, len(devices), max_tokens,
                                            nvidia)
  matmul_fn, matmul_name = _matmul(matmul, platform, len(devices))
  if attention_fn is ops_lib.xla_attention and matmul_fn is ops_lib.xla_matmul:
    return ops_lib.XLA_OPS
  name = f"{platform} x{len(devices)}: {attention_name}, {matmul_name}"
  logging.info("implementations: %s", name)
  return ops_lib.Ops(matmul=matmul_fn, attention=attention_fn, name=name)


def ops_from_config(kernels_cfg, devices: Sequence[jax.Device],
                    max_tokens: int | None = None) -> ops_lib.Ops:
  """`ops_for` from a `config.kernels` block ({"attention", "matmul"}; absent = "auto")."""
  get = lambda k: (kernels_cfg.get(k, "auto") if kernels_cfg is not None else "auto")
  return ops_for(devices, attention=get("attention"), matmul=get("matmul"),
                 max_tokens=max_tokens)
