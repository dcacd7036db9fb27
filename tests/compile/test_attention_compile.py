"""Slow tier: the attention kernels in the real TPU / GPU programs of the base config.

  PYTHONPATH=$PWD .venv-tpu/bin/python -m pytest -q -m slow tests/compile/test_attention_compile.py
  PYTHONPATH=$PWD .venv-cuda12/bin/python -m pytest -q -m slow tests/compile/test_attention_compile.py
Skips, naming the extra, where the compiler is not installed. Compares per-device memory of the
same train step with kernels.attention="xla" (before) and "auto" (after: splash / cuDNN).
"""

from __future__ import annotations

import pathlib

import pytest

from spectralgpt_jax.cli import _config
from spectralgpt_jax.compile import aot, targets

pytestmark = pytest.mark.slow

BASE = str(pathlib.Path(__file__).resolve().parents[2] / "configs/pretrain/spectralgpt_plus_base_128.py")
TARGET = {"tpu": "v5e-4", "cuda": "h100"}
KERNEL = {"tpu": "tpu_custom_call", "cuda": "__cudnn$fmha"}


def _compile(platform: str, attention: str, per_device: int = 16) -> dict:
  ok, why = targets.compiler_available(platform)
  if not ok:
    pytest.skip(why)
  target = targets.prepare(TARGET[platform])
  config = _config.load(BASE)
  config.batch_size = per_device * target.num_devices
  config.kernels.attention = attention
  rep = aot.compile_config(config, target.name)
  assert rep["compiled"], rep.get("error")
  return rep


def _kernel_calls(rep: dict, platform: str) -> int:
  # TPU: the lowered program (libtpu may fuse a plain forward into a tpu_custom_call of its own
  # at compile time, so only the lowered text proves the Pallas kernel came from us). GPU: the
  # compiled one (sharded, the lowered text shows jax's CustomSPMDPartitioning wrapper instead).
  calls = rep["lowered_custom_calls"] if platform == "tpu" else rep["custom_calls"]
  return sum(n for name, n in calls.items() if name.startswith(KERNEL[platform]))


@pytest.mark.parametrize("platform", ["tpu", "cuda"])
def test_base_program_uses_the_platform_kernel_and_less_memory(platform):
  after = _compile(platform, "auto")
  assert _kernel_calls(after, platform) > 0, after["lowered_custom_calls"]
  before = _compile(platform, "xla")
  assert _kernel_calls(before, platform) == 0
  print(f"{platform}: xla {before['memory']['total_gib']:.2f} GiB -> "
        f"{after['memory']['total_gib']:.2f} GiB per device")
  assert after["memory"]["total"] <= before["memory"]["total"]
