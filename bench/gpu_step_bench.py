"""GPU step benchmark: base and large MAE train steps on one NVIDIA GPU, bf16, cuDNN attention.

For each model, the batch doubles from --start-batch while the compiled step fits the device
(memory_analysis vs the device's memory, 10% left free; XLA:GPU itself never refuses), then the
largest that fits runs: images/s and MFU against the device's dense bf16 peak from
compile/targets.py (H100 / H200 SXM: 989.4 TFLOP/s). FLOPs are the model's (models/flops.py,
matmuls only), so MFU is conservative. Checks the program holds cuDNN's fmha calls.

  PYTHONPATH=$PWD .venv-cuda12/bin/python bench/gpu_step_bench.py --out BENCHMARKS.md
  ... --models base --steps 20 --json /tmp/gpu.json
  ... --quick     # smoke run: the tiny model, batches 2 and 4, seconds

Needs a real GPU (jax.devices()[0].platform == "gpu"); it refuses to run elsewhere, so no GPU
time is ever estimated from a CPU.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

from timing import QUICK_HELP, quick_out, time_train_steps

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = {"base": ("configs/pretrain/spectralgpt_plus_base_128.py", None),
           "large": ("configs/pretrain/spectralgpt_large.py", "stage=2"),
           "tiny": ("configs/pretrain/tiny_s2.py", None)}
HEADROOM = 0.10


def _program(name: str, batch: int, device, remat: str):
  from spectralgpt_jax.cli import _config
  from spectralgpt_jax.sharding import mesh as mesh_lib
  from spectralgpt_jax.train import program as program_lib
  path, arg = CONFIGS[name]
  config = _config.load(str(ROOT / path) + (f":{arg}" if arg else ""))
  config.batch_size, config.model.dtype, config.model.remat = batch, "bfloat16", remat
  config.kernels.attention = "cudnn"
  config.optim.accum_steps = 1
  mesh = mesh_lib.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, [device])
  program = program_lib.build_program(config, mesh)
  t0 = time.perf_counter()
  compiled = program.lower().compile()
  return config, program, compiled, time.perf_counter() - t0


def _bytes(compiled) -> int:
  m = compiled.memory_analysis()
  return (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
          + m.temp_size_in_bytes + m.generated_code_size_in_bytes)


def run_model(name: str, start: int, max_batch: int, steps: int, remat: str) -> dict:
  import jax
  import numpy as np
  from spectralgpt_jax.compile import report
  from spectralgpt_jax.train import metrics, model_state
  device = jax.devices()[0]
  limit = device.memory_stats().get("bytes_limit") if device.memory_stats() else None
  best, tried, batch = None, [], start
  while batch <= max_batch:
    config, program, compiled, secs = _program(name, batch, device, remat)
    need = _bytes(compiled)
    ok = limit is not None and need <= (1 - HEADROOM) * limit
    tried.append({"batch": batch, "gib": need / 2**30, "fits": ok, "compile_s": secs})
    print(f"{name} batch {batch}: {need / 2**30:.2f} GiB of {limit / 2**30:.2f}"
          f" -> {'fits' if ok else 'does not fit'}", flush=True)
    if not ok:
      break
    best = (config, program, compiled, secs)
    batch *= 2
  if best is None:
    return {"model": name, "tried": tried, "error": "no batch fits"}
  config, program, compiled, secs = best
  fmha = {k: v for k, v in report.custom_calls(compiled.as_text()).items() if "fmha" in k}
  with jax.set_mesh(program.mesh):
    state = model_state.init_sharded(program.model, program.tx, jax.random.key(0),
                                     program.shardings)
  b = config.batch_size
  cube = jax.device_put(np.random.default_rng(0).uniform(size=program.cube_shape)
                        .astype(np.float32), program.cube_sharding)
  times, state, m = time_train_steps(compiled, state, {"cube": cube}, jax.random.key(0), 2,
                                     steps)
  med = statistics.median(times)
  flops = metrics.model_flops_per_example(program.model.spec, config.masking.ratio,
                                          config.image_size) * b
  peak = metrics.peak_flops(device.device_kind)
  return {"model": config.model.name, "device": device.device_kind, "batch": b, "remat": remat,
          "s_per_step": med, "images_per_s": b / med, "model_tflops": flops / med / 1e12,
          "mfu": None if peak is None else flops / med / peak, "compile_s": secs,
          "fmha_calls": fmha, "tried": tried, "loss": float(m["loss"])}


def markdown(rows: list[dict]) -> str:
  lines = ["| model | device | batch | remat | s/step | images/s | model TFLOP/s | MFU | cuDNN fmha |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    if "error" in r:
      lines.append(f"| {r['model']} | | | | {r['error']} | | | | |")
      continue
    mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
    lines.append(f"| {r['model']} | {r['device']} | {r['batch']} | {r['remat']} | "
                 f"{r['s_per_step']:.3f} | {r['images_per_s']:.0f} | {r['model_tflops']:.0f} | "
                 f"{mfu} | {sum(r['fmha_calls'].values())} |")
  return "\n".join(lines)


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--models", default="base,large")
  p.add_argument("--start-batch", type=int, default=32)
  p.add_argument("--max-batch", type=int, default=4096)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--remat", default="none", choices=("none", "dots", "full"))
  p.add_argument("--json", default=None)
  p.add_argument("--out", default=None, help="append a dated section to this markdown file")
  p.add_argument("--quick", action="store_true", help=QUICK_HELP)
  a = p.parse_args()
  import jax
  if jax.devices()[0].platform != "gpu":
    print(f"gpu_step_bench: needs an NVIDIA GPU, found {jax.devices()[0].platform}; "
          "nothing measured", file=sys.stderr)
    return 2
  if a.quick:
    a.models, a.start_batch, a.max_batch, a.steps = "tiny", 2, 4, 2
    a.out = quick_out("gpu_step_bench")
  rows = [run_model(m, a.start_batch, a.max_batch, a.steps, a.remat)
          for m in a.models.split(",")]
  print(markdown(rows))
  if a.json:
    pathlib.Path(a.json).write_text(json.dumps(rows, indent=1))
  if a.out:
    sys.path.insert(0, str(ROOT / "bench"))
    import timing
    timing.append_section(a.out, "GPU train step, one device, bf16, cuDNN attention",
                          f"{a.steps} timed steps, median; largest power-of-two batch leaving "
                          f"{HEADROOM:.0%} of memory free.", markdown(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
