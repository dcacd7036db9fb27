"""One pretraining step of mae_vit_base_patch8_128 on this CPU: ours (jit) vs the PyTorch twin.

Measures, in one run and side by side: the f32 matmul peak (jax, 2048^2), our jitted train step
(forward + backward + AdamW) in float32 and with bfloat16 compute, and the PyTorch twin's eager
step (written the way the official code computes; official AdamW grouping). Reports images/s,
the speed ratio to the twin, and MFU against the measured f32 peak, using the analytic model
FLOPs of spectralgpt_jax.models.flops. Appends a dated section to the --out markdown file.

Allocators: our steps run with the host allocator setting our `train` uses (hostmem.py; off with
--keep-os-allocator). The twin runs in its own process: "torch" as the official code runs (glibc
defaults), "torch-hostmem" with the same allocator setting as ours, for a like-for-like ratio.

  .venv/bin/python bench/step_bench.py --out BENCHMARKS.md
  .venv/bin/python bench/step_bench.py --quick      # smoke run: tiny model, seconds
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import pathlib
import statistics
import subprocess
import sys

import numpy as np

from timing import QUICK_HELP, cpu_name, quick_out, timed

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # spectralgpt_jax (its PyTorch model too) when run as a script

MODEL, BATCH, MASK_RATIO = "mae_vit_base_patch8_128", 8, 0.9
PEAK_N = 2048  # side of the square matmul of the peaks
QUICK_MODEL, QUICK_BATCH, QUICK_PEAK_N = "mae_vit_tiny_patch8_32", 2, 256


def use_quick_sizes() -> None:
  """--quick: the tiny model, a small batch and a small peak matmul (this process only)."""
  global MODEL, BATCH, PEAK_N
  MODEL, BATCH, PEAK_N = QUICK_MODEL, QUICK_BATCH, QUICK_PEAK_N


def cube_batch(batch: int) -> np.ndarray:
  """Uniform float32 cubes [batch, C, S, S] of MODEL's input size."""
  from spectralgpt_jax.models import get_spec
  spec = get_spec(MODEL)
  return np.random.default_rng(0).uniform(
      size=(batch, spec.num_bands, spec.img_size, spec.img_size)).astype(np.float32)


def matmul_peak(dtype_name: str, n: int | None = None) -> float:
  """GFLOP/s of a jitted n x n matmul (bf16 inputs accumulate in f32)."""
  import jax
  import jax.numpy as jnp
  n = n or PEAK_N
  dtype = jnp.bfloat16 if dtype_name == "bfloat16" else jnp.float32
  a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), dtype)
  f = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
  times = timed(lambda: f(a, a).block_until_ready(), 2, 7)
  return 2 * n ** 3 / min(times) / 1e9


def torch_matmul_peak(n: int | None = None) -> float:
  """GFLOP/s of torch's f32 n x n matmul (MKL on x86): the machine's best f32 GEMM we can run."""
  import torch
  n = n or PEAK_N
  torch.set_num_threads(os.cpu_count() or 1)
  a = torch.from_numpy(np.random.default_rng(0).normal(size=(n, n)).astype(np.float32))
  times = timed(lambda: a @ a, 2, 7)
  return 2 * n ** 3 / min(times) / 1e9


def jax_step(dtype_name: str, attention: str, matmul: str, warmup: int,
             steps: int) -> tuple[list[float], float]:
  """Times our jitted train step; returns (seconds per step, last loss)."""
  import jax
  import jax.numpy as jnp
  import optax
  from spectralgpt_jax import losses
  from spectralgpt_jax.models import get_model
  from spectralgpt_jax.kernels import select
  from spectralgpt_jax.models import shapes
  from spectralgpt_jax.models.patch_embed import patchify

  dtype = jnp.bfloat16 if dtype_name == "bfloat16" else jnp.float32
  ops = select.ops_for(jax.devices()[:1], attention=attention, matmul=matmul)
  model = get_model(MODEL, dtype=dtype, ops=ops)
  x = cube_batch(BATCH)
  params = shapes.init_params(model)
  # Official pretraining AdamW: betas (0.9, 0.95), wd 0.05 on every >= 2-D parameter.
  tx = optax.adamw(1e-4, b1=0.9, b2=0.95, weight_decay=0.05,
                   mask=lambda p: jax.tree.map(lambda a: a.ndim >= 2, p))
  opt_state = tx.init(params)

  def step(params, opt_state, x, key):
    def loss_fn(p):
      pred, aux = model.apply({"params": p}, x, mask_ratio=MASK_RATIO, rngs={"masking": key})
      target = patchify(x, model.spec.t_patch, model.spec.patch)
      return losses.spectralgpt_loss(pred, target, aux["mask"], model.spec.grid)[0]
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, opt_state, x,
                                                        jax.random.key(0)).compile()
  state = {"p": params, "o": opt_state, "i": 0, "loss": None}

  def run():
    state["p"], state["o"], loss = compiled(state["p"], state["o"], x,
                                            jax.random.key(state["i"]))
    state["loss"] = float(loss)
    state["i"] += 1

  return timed(run, warmup, steps), state["loss"]


def torch_step(warmup: int, steps: int) -> list[float]:
  """Times the PyTorch twin's eager step: forward_loss + backward + AdamW (official groups)."""
  import torch
  from spectralgpt_jax.torch import create_model
  torch.set_num_threads(os.cpu_count() or 1)
  model = create_model(MODEL)
  decay = [p for n, p in model.named_parameters() if p.ndim > 1 and not n.endswith(".bias")]
  no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or n.endswith(".bias")]
  opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                           {"params": no_decay, "weight_decay": 0.0}], lr=1e-4,
                          betas=(0.9, 0.95))
  x = torch.from_numpy(cube_batch(BATCH))

  def run():
    loss, _, _ = model(x, mask_ratio=MASK_RATIO)
    opt.zero_grad()
    loss.backward()
    opt.step()

  return timed(run, warmup, steps)


def rss_gib() -> float:
  """This process's resident memory (Linux; 0 elsewhere)."""
  try:
    with open("/proc/self/status") as f:
      kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
  except (OSError, StopIteration):
    return 0.0
  return kib / 2**20


def in_subprocess(*flags: str):
  """Runs this script with `flags` (a --twin-only mode) in a fresh process; returns its JSON.

  The twin gets a process of its own: the allocator setting is per process, and an idle JAX
  runtime beside it measurably slowed it down."""
  quick = ["--quick"] if MODEL == QUICK_MODEL else []
  out = subprocess.run([sys.executable, __file__, "--twin-only", *quick, *flags], check=True,
                       capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


CONFIGS = {"f32": ("float32", "auto", "auto"), "bf16": ("bfloat16", "auto", "auto"),
           "f32-xla": ("float32", "xla", "auto"), "f32-blocked": ("float32", "blocked", "auto"),
           "bf16-blocked": ("bfloat16", "blocked", "auto"),
           "f32-xla-gemm": ("float32", "auto", "xla")}


def parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="markdown file to append results to")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--interleave", type=int, default=1,
                      help="run the jax configs in turn this many times (an A/B on a noisy "
                           "machine); each reports the median over its runs' medians")
  parser.add_argument("--what",
                      default="peak,f32,f32-xla-gemm,f32-blocked,bf16,torch,torch-hostmem",
                      help="comma list of peak, f32, bf16, f32-xla, f32-blocked, bf16-blocked, "
                           "f32-xla-gemm, torch, torch-hostmem (f32/bf16: attention and matmul "
                           "'auto'; -blocked: XLA blocked attention; f32-xla: plain XLA "
                           "attention; f32-xla-gemm: XLA's GEMMs instead of the BLAS kernel; "
                           "torch: glibc defaults; torch-hostmem: tuned allocator)")
  parser.add_argument("--keep-os-allocator", action="store_true",
                      help="do not tune glibc malloc for our steps (spectralgpt_jax/hostmem.py)")
  parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
  parser.add_argument("--twin-only", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--twin-hostmem", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--twin-peak", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.quick:
    use_quick_sizes()
    if not args.twin_only:
      args.steps, args.warmup, args.out = 1, 1, quick_out("step_bench")
      args.what = "peak,f32,bf16,torch"  # the other rows differ only in kernels.select's choice
  return args


def measure_peaks(results: dict) -> None:
  """Matmul peaks, kept at their highest reading: this machine's speed drifts within a run,
  and the highest peak gives the lowest (conservative) MFU."""
  readings = {"peak_f32": matmul_peak("float32"), "peak_bf16": matmul_peak("bfloat16"),
              "peak_f32_torch": in_subprocess("--twin-peak")}
  for key, value in readings.items():
    results[key] = max(results.get(key, 0.0), value)
  print(f"matmul peak so far: f32 {results['peak_f32']:.0f} GFLOP/s (torch/MKL "
        f"{results['peak_f32_torch']:.0f}), bf16->f32 {results['peak_bf16']:.0f} GFLOP/s",
        flush=True)


def run_jax(args, what: list[str], results: dict) -> dict[str, list[float]]:
  """Our steps (and the peaks around them) into `results`; returns each config's run medians."""
  if "peak" in what:
    measure_peaks(results)
  runs: dict[str, list[float]] = {}
  for _ in range(args.interleave):
    for key in [w for w in what if w in CONFIGS]:
      times, loss = jax_step(*CONFIGS[key], args.warmup, args.steps)
      runs.setdefault(key, []).append(statistics.median(times))
      print(f"jax {key}: {runs[key][-1]:.2f} s/step {times} loss {loss:.4f}", flush=True)
  for key, medians in runs.items():
    results[key] = statistics.median(medians)
    if len(medians) > 1:
      print(f"jax {key}: median {results[key]:.3f} over runs {[round(m, 2) for m in medians]}")
  if "peak" in what:
    measure_peaks(results)  # again after our steps: the larger reading counts
  return runs


def run_twin(args, what: list[str], results: dict) -> None:
  """The PyTorch model's step, each variant in a process of its own, into `results`."""
  from spectralgpt_jax import hostmem
  # Our steps' freed memory stays with this process (hostmem); give it back before the twin runs,
  # or the two together can exceed the machine's RAM (the twin-hostmem child was OOM-killed once).
  import jax
  jax.clear_caches()
  gc.collect()
  print(f"this process before the twin: {rss_gib():.1f} GiB resident", end="")
  hostmem.release_free_host_memory()
  print(f", {rss_gib():.1f} GiB after releasing freed memory", flush=True)
  for key, tuned_twin in (("torch", False), ("torch-hostmem", True)):
    if key in what:
      flags = ["--warmup", str(args.warmup), "--steps", str(args.steps)]
      times = in_subprocess(*flags, *(["--twin-hostmem"] if tuned_twin else []))
      results[key] = statistics.median(times)
      print(f"{key} eager: {results[key]:.2f} s/step {times}", flush=True)


def results_table(results: dict, flops: float) -> str:
  """One row per measured step: time, images/s, ratios to the twin, GFLOP/s, MFU."""
  nan, rows = float("nan"), []
  for key in [k for k in (*CONFIGS, "torch", "torch-hostmem") if k in results]:
    sec = results[key]
    achieved = flops / sec / 1e9
    best_f32 = max([results[p] for p in ("peak_f32", "peak_f32_torch") if p in results],
                   default=nan)
    if key.startswith("bf16"):
      mfu = f"{achieved / results.get('peak_bf16', nan):.0%} of XLA bf16"
    else:
      mfu = (f"**{achieved / best_f32:.0%}** of best f32 "
             f"({achieved / results.get('peak_f32', nan):.0%} of XLA f32)")
    rows.append(f"| {key} | {sec:.2f} | {BATCH / sec:.2f} | "
                f"{results.get('torch', nan) / sec:.2f}x | "
                f"{results.get('torch-hostmem', nan) / sec:.2f}x | {achieved:.0f} | {mfu} |")
  return "\n".join(["| step | s/step (median) | images/s | vs torch | vs torch-hostmem | "
                    "model GFLOP/s | MFU (of the matmul peaks measured in this run) |",
                    "|---|---|---|---|---|---|---|", *rows])


def write_section(out: str, table: str, results: dict, flops: float, tuned: bool,
                  runs: dict[str, list[float]]) -> None:
  """Appends the dated section (machine, command, protocol, peaks, table) to `out`."""
  nan = float("nan")
  head = (f"\n### {MODEL} train step, batch {BATCH}, mask {MASK_RATIO} "
          f"({datetime.date.today()})\n\n"
          f"Machine: {cpu_name()}, {os.cpu_count()} cores. "
          f"Command: `.venv/bin/python bench/step_bench.py {' '.join(sys.argv[1:])}`. "
          f"Our steps with the tuned host allocator (hostmem): {tuned}; twin: torch = glibc "
          f"defaults (as the official code runs), torch-hostmem = tuned, each in its own "
          f"process. "
          f"Model FLOPs/step {flops / 1e12:.3f} TFLOP; {PEAK_N}^2 matmul peaks (the higher of "
          f"readings before and after our steps): f32 XLA "
          f"{results.get('peak_f32', nan):.0f}, f32 torch/MKL "
          f"{results.get('peak_f32_torch', nan):.0f} (best f32 = the larger), bf16 "
          f"XLA {results.get('peak_bf16', nan):.0f} GFLOP/s.\n\n")
  per_run = "".join(f"\n{k}: per-run medians {[round(m, 2) for m in v]}"
                    for k, v in runs.items() if len(v) > 1)
  with open(out, "a") as f:
    f.write(head + table + "\n" + (f"\nInterleaved runs:{per_run}\n" if per_run else ""))


def main() -> None:
  args = parse_args()
  from spectralgpt_jax import hostmem
  if args.twin_only:  # child process of in_subprocess: prints its result as JSON
    if args.twin_hostmem and not hostmem.retain_freed_host_memory():
      raise SystemExit("cannot tune the allocator here (not glibc)")
    print(json.dumps(torch_matmul_peak() if args.twin_peak else
                     torch_step(args.warmup, args.steps)))
    return
  tuned = False if args.keep_os_allocator else hostmem.retain_freed_host_memory()
  what = args.what.split(",")
  from spectralgpt_jax.models import get_spec
  from spectralgpt_jax.models.flops import mae_train_flops
  flops = mae_train_flops(get_spec(MODEL), BATCH, MASK_RATIO)
  results: dict = {}
  runs = run_jax(args, what, results)
  run_twin(args, what, results)
  table = results_table(results, flops)
  print(table)
  if args.out:
    write_section(args.out, table, results, flops, tuned, runs)


if __name__ == "__main__":
  main()
