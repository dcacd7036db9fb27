"""Named compile targets (TPU slices, NVIDIA GPUs) -> their devices, memory and peak FLOP/s.

The devices come from `jax.experimental.topologies.get_topology_desc`: the real TPU / GPU
compiler builds for them from this CPU host, nothing runs. TPU needs libtpu
(`make setup-tpu`, extra `tpu`), GPU the CUDA plugin (`make setup-cuda12`, extra `cuda12`, run
with JAX_PLATFORMS=cpu). Topology arguments follow MaxText's accelerator table (v4 / v5p are
megacore: one device per chip); see ../shared/STACK.md section 5.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
import sys
from typing import Any

from spectralgpt_jax import devices

GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Target:
  """One compile target. memory_bytes: per device, what the compiler may use (TPU: usable HBM)."""
  name: str
  platform: str                 # "tpu" | "cuda"
  num_devices: int
  device_kind: str              # what jax.Device.device_kind reads on the real chips
  memory_bytes: int
  peak_bf16_tflops: float       # dense bf16, per device
  topology: str                 # TPU "v5e:2x4"; GPU "1x1x8" (slices x hosts x GPUs per host)
  chip_config: str = "default"  # TPU: "megacore" for v4 / v5p
  chips_per_host_bounds: tuple[int, int, int] = (2, 2, 1)
  wrap: tuple[bool, bool, bool] = (False, False, False)
  gpu_config: str | None = None  # GpuTargetConfig text file in compile/gpu_targets/

  @property
  def extra(self) -> str:
    return "tpu" if self.platform == "tpu" else "cuda12"


# Peak throughput per device kind: the one table in spectralgpt_jax/devices.py.


# Usable HBM per device: what libtpu reports when it refuses a program ("temps 16.59G > 15.75G"
# on v5e); read here for every TPU row from libtpu 0.0.42.1's refusal of an oversized program
# ("exceeds available HBM (31.25G)": v5e 15.75, v4 30.75, v5p 95.74, v6e 31.25). GPU: device_memory_size
# of the target config (the full HBM; XLA:GPU does not refuse a program that does not fit and
# the runtime keeps some for itself).
_H100_MEM, _H200_MEM = 84_929_347_584, 150_754_820_096


def _tpu(name, topology, n, kind, mem_gib, chip="default", wrap=(False,) * 3):
  return Target(name, "tpu", n, kind, int(mem_gib * GIB), devices.PEAK_BF16_TFLOPS[kind],
                topology, chip, (2, 2, 1), wrap)


def _gpu(name, topology, n, kind, mem_bytes, cfg):
  return Target(name, "cuda", n, kind, mem_bytes, devices.PEAK_BF16_TFLOPS[kind], topology,
                gpu_config=cfg)


TARGETS: dict[str, Target] = {t.name: t for t in (
    _tpu("v5e-4", "v5e:2x2", 4, devices.TPU_V5E, 15.75),
    _tpu("v5e-8", "v5e:2x4", 8, devices.TPU_V5E, 15.75),
    _tpu("v5e-16", "v5e:4x4", 16, devices.TPU_V5E, 15.75),
    _tpu("v5e-256", "v5e:16x16", 256, devices.TPU_V5E, 15.75, wrap=(True, True, False)),
    _tpu("v4-8", "v4:2x2x1", 4, devices.TPU_V4, 30.75, "megacore"),
    _tpu("v4-32", "v4:2x2x4", 16, devices.TPU_V4, 30.75, "megacore"),
    _tpu("v5p-8", "v5:2x2x1", 4, devices.TPU_V5P, 95.74, "megacore"),
    _tpu("v5p-128", "v5:4x4x4", 64, devices.TPU_V5P, 95.74, "megacore", (True, True, True)),
    _tpu("v6e-8", "v6e:2x4", 8, devices.TPU_V6E, 31.25),
    _tpu("v6e-256", "v6e:16x16", 256, devices.TPU_V6E, 31.25, wrap=(True, True, False)),
    _gpu("h100", "1x1x1", 1, devices.H100, _H100_MEM, "h100_sxm.txtpb"),
    _gpu("8xh100", "1x1x8", 8, devices.H100, _H100_MEM, "h100_sxm.txtpb"),
    _gpu("h200", "1x1x1", 1, devices.H200, _H200_MEM, "h200_sxm.txtpb"),
    _gpu("8xh200", "1x1x8", 8, devices.H200, _H200_MEM, "h200_sxm.txtpb"),
)}


class MissingCompilerError(RuntimeError):
  """The compiler for a target's platform is not installed in this venv."""


def get_target(name: str) -> Target:
  try:
    return TARGETS[name]
  except KeyError:
    raise ValueError(f"unknown compile target {name!r}; known: {', '.join(TARGETS)}") from None


def gpu_target_config(target: Target) -> str:
  """The GpuTargetConfig text shipped with the package for a GPU target."""
  res = importlib.resources.files("spectralgpt_jax.compile") / "gpu_targets" / target.gpu_config
  return res.read_text()


def compiler_available(platform: str) -> tuple[bool, str]:
  """(available, reason): whether libtpu / the CUDA plugin can be imported here. Imports no jax."""
  import importlib.util
  module = {"tpu": "libtpu", "cuda": "jax_plugins.xla_cuda12"}[platform]
  try:
    found = importlib.util.find_spec(module) is not None
  except ModuleNotFoundError:
    found = False
  if found:
    return True, ""
  extra, make = ("tpu", "setup-tpu") if platform == "tpu" else ("cuda12", "setup-cuda12")
  return False, (f"{module}, which is not installed in this venv: run `make {make}` (the "
                 f"'.[{extra}]' extra), then use .venv-{extra}/bin/python")


def _prepare_env(platform: str) -> None:
  """Environment the deviceless compilers need; must be set before jax initialises backends."""
  if platform == "tpu":
    # Two processes that load libtpu collide on its lock file; no TPU metadata server here.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  else:
    # The CUDA plugin must not try to open a GPU: only the host backend is initialised.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if "jax" in sys.modules:  # imported already: the flag still counts until backends start
      sys.modules["jax"].config.update("jax_platforms", os.environ["JAX_PLATFORMS"])


def prepare(name: str) -> Target:
  """Checks the compiler is installed and sets its environment; call before importing jax."""
  target = get_target(name)
  ok, why = compiler_available(target.platform)
  if not ok:
    raise MissingCompilerError(f"target {name!r} needs {why}")
  _prepare_env(target.platform)
  return target


@functools.cache
def _topology(name: str) -> Any:
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  t = prepare(name)
  if t.platform == "tpu":
    return topologies.get_topology_desc(
        platform="tpu", topology_name=t.topology, chip_config_name=t.chip_config,
        chips_per_host_bounds=t.chips_per_host_bounds, num_slices=1, wrap=t.wrap)
  return topologies.get_topology_desc(platform="cuda", target_config=gpu_target_config(t),
                                      topology=t.topology)


def target_devices(name: str) -> list[Any]:
  """The target's devices (abstract: compile only), in topology order."""
  target = get_target(name)
  try:
    devices = list(_topology(name).devices)
  except MissingCompilerError:
    raise
  except Exception as e:  # libtpu / plugin present but not loadable
    raise MissingCompilerError(f"could not build the {target.platform} topology for {name!r} "
                               f"({type(e).__name__}: {e}); is the '.[{target.extra}]' extra "
                               f"installed in this venv?") from e
  if len(devices) != target.num_devices:
    raise RuntimeError(f"{name}: topology gave {len(devices)} devices, table says "
                       f"{target.num_devices}")
  return devices
