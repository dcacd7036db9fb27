"""What the pod presets (configs/pods/*) ask of a host's input pipeline: cubes/s per host at an
assumed MFU, from the model's training FLOPs per example and the chips' dense bf16 peak."""

from __future__ import annotations

import math

PODS = ("base_v5e256", "large_v5e256", "huge_v5e256", "base_8xh100", "large_8xh100",
        "huge_8xh100")
TARGET_OF = {"v5e256": "v5e-256", "8xh100": "8xh100"}


def per_host(mfu: float) -> list[dict]:
  """Per pod preset: per-host images/s at `mfu` from model FLOPs and the device peak."""
  import importlib  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax import devices  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.compile import targets  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.models import get_spec  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.train import metrics  # pylint: disable=g-import-not-at-top
  rows = []
  for name in PODS:
    c = importlib.import_module(f"configs.pods.{name}").get_config()
    target = targets.get_target(TARGET_OF[name.split("_", 1)[1]])
    per_host = (math.prod(target.chips_per_host_bounds) if target.platform == "tpu"
                else int(target.topology.split("x")[-1]))
    flops = metrics.model_flops_per_example(get_spec(c.model.name), c.masking.ratio,
                                            c.data.image_size)
    peak = devices.peak_bf16_tflops(target.device_kind) * 1e12
    rows.append({"preset": name, "model": c.model.name, "target": target.name,
                 "chips_per_host": per_host, "gflops": flops / 1e9,
                 "per_host": per_host * peak * mfu / flops})
  return rows


def table(mfu: float, pods: list[dict], per_core: dict) -> list[str]:
  """Markdown lines: per preset, cubes/s per host and the input cores each format needs
  (`per_core`: format -> (cubes/s per core, ...))."""
  fmts = list(per_core)
  lines = [f"Input demand of the pod presets at an assumed MFU of {mfu:.0%} (per host: chips "
           "per host x dense bf16 peak (spectralgpt_jax/devices.py) x MFU / training FLOPs per "
           "example (spectralgpt_jax/models/flops.py: 3 x forward, matmuls only, mask 0.9)); "
           "cores = that / the measured cubes/s per core above (0 workers):", "",
           "| preset | model | chips/host | GFLOP/example | cubes/s per host | " +
           " | ".join(f"cores, {f}" for f in fmts) + " |",
           "|---|---|---|---|---|" + "---|" * len(fmts)]
  for p in pods:
    cores = [f"{math.ceil(p['per_host'] / per_core[f][0])}" if per_core[f][0] else "-"
             for f in fmts]
    lines.append(f"| {p['preset']} | {p['model']} | {p['chips_per_host']} | "
                 f"{p['gflops']:.0f} | {p['per_host']:.0f} | " + " | ".join(cores) + " |")
  return lines + [""]
