"""Scale benchmark of the pretraining step: FSDP memory of the huge model, step time on base.

1. memory: AOT-compiles (no run) the train step of SpectralGPT-huge (mae_vit_huge_patch8_128,
   644M params, configs/pretrain/spectralgpt_huge.py: bf16 compute, full remat, scan) for a
   global batch on 1 device and on a simulated 8-device FSDP mesh, and reads each program's
   memory from XLA (arguments + outputs - donated aliases + temporaries). Ideal per device =
   single-device need / 8; target <= 1.15x.
2. time: runs the base model's step (mae_vit_base_patch8_{96,128}) on this machine's one real
   CPU device, for mask ratios and image sizes, and reports s/step, images/s and model TFLOP/s.

  .venv/bin/python bench/scale_bench.py --out BENCHMARKS.md            # both parts
  .venv/bin/python bench/scale_bench.py --part memory --json /tmp/mem.json   # one part
  .venv/bin/python bench/scale_bench.py --quick      # smoke run: the tiny model, both parts
Each part runs in its own process (the device count is fixed at jax import).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

from timing import QUICK_HELP, cpu_name, quick_out, time_train_steps

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GIB = 1 << 30


def _setup(config, mesh_cfg, devices, preset: str | None = None) -> argparse.Namespace:
  """The compiled step (and what built it) for `config` on a mesh over `devices`; no run."""
  from spectralgpt_jax.models import shapes
  from spectralgpt_jax.sharding import mesh as mesh_lib
  from spectralgpt_jax.train import program as program_lib
  mesh = mesh_lib.make_mesh(mesh_cfg, devices)
  if preset:
    config.sharding.rules = preset
  program = program_lib.build_program(config, mesh)
  t0 = time.perf_counter()
  compiled = program.lower().compile()
  return argparse.Namespace(
      compiled=compiled, compile_s=time.perf_counter() - t0, model=program.model, tx=program.tx,
      mesh=mesh, shardings=program.shardings, cube_sh=program.cube_sharding,
      params=shapes.count(program.abstract.params))


def _memory_config(quick: bool):
  """SpectralGPT-huge (stage 2), or with --quick the tiny pretraining config."""
  from configs.pretrain import spectralgpt_huge, tiny_s2
  return tiny_s2.get_config() if quick else spectralgpt_huge.get_config("stage=2")


def part_memory(batches: list[int], quick: bool = False) -> dict:
  import jax
  out = []
  for batch in batches:
    config = _memory_config(quick)
    config.batch_size = batch
    config.kernels.attention = "xla"  # what accelerators run, to measure their memory here
    rows = {}
    for name, mesh_cfg, devices in (("1 device", {"data": 1, "fsdp": 1, "tensor": 1},
                                     jax.devices()[:1]),
                                    ("8-way FSDP", {"data": 1, "fsdp": 8, "tensor": 1}, None)):
      run = _setup(config, mesh_cfg, devices)
      m, secs = run.compiled.memory_analysis(), run.compile_s
      total = (m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
               + m.temp_size_in_bytes)
      rows[name] = {"arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes,
                    "aliased": m.alias_size_in_bytes, "temporaries": m.temp_size_in_bytes,
                    "total": total, "compile_s": secs}
      print(f"[memory] batch {batch}, {name}: {total / GIB:.2f} GiB per device (compiled in "
            f"{secs:.0f} s)", flush=True)
    one, fsdp = rows["1 device"], rows["8-way FSDP"]
    out.append({"model": config.model.name, "params": run.params, "batch": batch,
                "image_size": config.image_size, "mask_ratio": config.masking.ratio,
                "remat": config.model.remat, "dtype": config.model.dtype, "rows": rows,
                "ideal": one["total"] / 8, "ratio": fsdp["total"] / (one["total"] / 8),
                "state_ratio": fsdp["arguments"] / (one["arguments"] / 8),
                "temp_ratio": fsdp["temporaries"] / (one["temporaries"] / 8)})
  return {"cases": out}


def part_time(batch: int, steps: int, quick: bool = False) -> dict:
  import jax
  import numpy as np
  from configs.pretrain import spectralgpt_base_96, tiny_s2
  from spectralgpt_jax.train import metrics, model_state
  results = []
  cases = [(96, 0.75, "float32"), (96, 0.9, "float32"), (128, 0.75, "float32"),
           (128, 0.9, "float32"), (128, 0.9, "bfloat16")]
  family = "mae_vit_base_patch8"
  if quick:
    cases, family = [(32, 0.9, "float32")], "mae_vit_tiny_patch8"
  for size, ratio, dtype in cases:
    config = tiny_s2.get_config() if quick else spectralgpt_base_96.get_config()
    config.image_size, config.batch_size, config.masking.ratio = size, batch, ratio
    config.model.name = f"{family}_{size}"
    config.model.dtype = dtype
    run = _setup(config, {"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1], "dp")
    compiled, model, secs = run.compiled, run.model, run.compile_s
    with jax.set_mesh(run.mesh):
      state = model_state.init_sharded(model, run.tx, jax.random.key(0), run.shardings)
    cube = jax.device_put(np.random.default_rng(0).uniform(
        size=(batch, 12, size, size)).astype(np.float32), run.cube_sh)
    times, state, m = time_train_steps(compiled, state, {"cube": cube}, jax.random.key(0), 1,
                                       steps)
    med = statistics.median(times)
    flops = metrics.model_flops_per_example(model.spec, ratio) * batch
    row = {"image_size": size, "mask_ratio": ratio, "dtype": dtype, "batch": batch,
           "s_per_step": med, "samples": times, "images_per_s": batch / med,
           "model_tflops": flops / med / 1e12, "compile_s": secs}
    print(f"[time] {size}px r={ratio} {dtype}: {med:.2f} s/step ({batch / med:.2f} img/s)",
          flush=True)
    results.append(row)
    del state
  return {"model": f"{family}_" + "{" + ",".join(str(c[0]) for c in cases) + "}",
          "rows": results}


def _markdown(mem: dict, tim: dict, cmd: str) -> str:
  day = datetime.date.today().isoformat()
  lines = [f"## Train step at scale ({day})", "",
           f"Machine: {cpu_name()}, {os.cpu_count()} CPU cores "
           "(shared; expect +-15% noise). Command: `" + cmd + "`.", ""]
  for case in (mem or {}).get("cases", []):
    r = case["rows"]
    lines += [f"### Memory: {case['model']} ({case['params'] / 1e6:.1f}M params), global batch "
              f"{case['batch']}: train step AOT-compiled, never run", "",
              f"{case['image_size']} px, mask {case['mask_ratio']}, {case['dtype']} compute, f32 "
              f"params + AdamW, remat `{case['remat']}`, scan; XLA's buffer assignment per "
              "device (CPU backend, 8 simulated devices).", "",
              "| program | arguments | outputs | donated (aliased) | temporaries | total per "
              "device | compile |", "|---|---|---|---|---|---|---|"]
    for name, v in r.items():
      lines.append(f"| {name} | {v['arguments'] / GIB:.2f} GiB | {v['outputs'] / GIB:.2f} GiB | "
                   f"{v['aliased'] / GIB:.2f} GiB | {v['temporaries'] / GIB:.2f} GiB | "
                   f"**{v['total'] / GIB:.2f} GiB** | {v['compile_s']:.0f} s |")
    lines += ["", f"Ideal per device (single-device need / 8): {case['ideal'] / GIB:.2f} GiB. "
              f"**FSDP / ideal = {case['ratio']:.3f}x** (target <= 1.15x); state (arguments) "
              f"{case['state_ratio']:.3f}x, temporaries {case['temp_ratio']:.3f}x.", ""]
  if tim:
    lines += ["### Step time: base model on one CPU device", "",
              "Forward + backward + AdamW, jitted, median of the timed steps after one warm-up; "
              "model TFLOP/s from spectralgpt_jax.models.flops (matmuls only).", "",
              "| image | mask ratio | compute | batch | s/step | images/s | model TFLOP/s |",
              "|---|---|---|---|---|---|---|"]
    for v in tim["rows"]:
      lines.append(f"| {v['image_size']} px | {v['mask_ratio']} | {v['dtype']} | {v['batch']} | "
                   f"{v['s_per_step']:.2f} | {v['images_per_s']:.2f} | "
                   f"{v['model_tflops']:.3f} |")
    lines += ["", "For reference, the official PyTorch step (fp32, same batch, 2 threads) takes 20-21 "
              "s at 128 px / mask 0.9 on this machine kind (../shared/spec/SPECTRALGPT.md, "
              "section 9).", ""]
  return "\n".join(lines)


def _child(part: str, args) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8" if part == "memory" else ""
  out = pathlib.Path(f"/tmp/scale_bench_{part}_{os.getpid()}.json")
  cmd = [sys.executable, __file__, "--part", part, "--json", str(out),
         "--batch", str(args.batch), "--time-batch", str(args.time_batch),
         "--steps", str(args.steps)] + (["--quick"] if args.quick else [])
  subprocess.run(cmd, env=env, check=True)
  return json.loads(out.read_text())


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--part", choices=("memory", "time", "all"), default="all")
  p.add_argument("--out", default="BENCHMARKS.md", help="markdown file (appended)")
  p.add_argument("--json", help="write this part's raw results here (child mode)")
  p.add_argument("--batch", default="256,32", help="global batches of the memory part")
  p.add_argument("--time-batch", type=int, default=8, help="batch of the timing part")
  p.add_argument("--steps", type=int, default=2, help="timed steps per timing case")
  p.add_argument("--quick", action="store_true", help=QUICK_HELP)
  args = p.parse_args()
  if args.part != "all" and args.json:  # child: run one part in this process
    res = (part_memory([int(b) for b in args.batch.split(",")], args.quick)
           if args.part == "memory" else part_time(args.time_batch, args.steps, args.quick))
    pathlib.Path(args.json).write_text(json.dumps(res, indent=1))
    return 0
  if args.quick:
    args.batch, args.time_batch, args.steps, args.out = "8", 2, 1, quick_out("scale_bench")
  mem = _child("memory", args) if args.part in ("memory", "all") else {}
  tim = _child("time", args) if args.part in ("time", "all") else {}
  cmd = "python bench/scale_bench.py " + " ".join(sys.argv[1:])
  with open(args.out, "a") as f:  # results accumulate, one dated section per run
    f.write("\n" + _markdown(mem, tim, cmd.strip()) + "\n")
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
