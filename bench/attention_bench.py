"""The decoder's attention on this CPU: plain XLA vs blocked XLA vs the fused FFI kernel.

Times forward and forward + backward of one decoder layer's attention core (batch 8, 1024 tokens,
16 heads of 32) under jit for each implementation, side by side in one run, then builds and runs
bench/cpu_attention_parts.cc: single-core timings of the kernel's parts. Appends a dated section
to the --out markdown file.

  .venv/bin/python bench/attention_bench.py --out BENCHMARKS.md
  .venv/bin/python bench/attention_bench.py --quick    # smoke run: a small shape, seconds
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import tempfile

import numpy as np

from timing import QUICK_HELP, append_section, best_seconds, quick_out

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHAPE = (8, 1024, 16, 32)  # mae_vit_base_patch8_128 decoder: B, N, H, head dim
QUICK_SHAPE = (2, 64, 2, 32)  # the fused kernel takes head dims 32 and 64


def layer_times(shape: tuple[int, ...], reps: int = 4) -> list[str]:
  import jax
  import jax.numpy as jnp
  from spectralgpt_jax.kernels import select
  rng = np.random.default_rng(0)
  q, k, v, cot = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(4))
  rows = []
  for impl in ("xla", "blocked", "fused"):
    attend = select.ops_for(jax.devices()[:1], attention=impl).attention
    fwd = jax.jit(attend)
    grad = jax.jit(jax.value_and_grad(
        lambda q, k, v, attend=attend: jnp.sum(attend(q, k, v) * cot), (0, 1, 2)))
    t_fwd = best_seconds(lambda: jax.block_until_ready(fwd(q, k, v)), reps)
    t_all = best_seconds(lambda: jax.block_until_ready(grad(q, k, v)), reps)
    rows.append(f"| {impl} | {t_fwd:.3f} | {t_all:.3f} |")
    print(rows[-1], flush=True)
  return ["| attention | forward (s) | forward + backward (s) |", "|---|---|---|", *rows]


def kernel_parts() -> list[str]:
  import jax
  from spectralgpt_jax.kernels import build
  with tempfile.TemporaryDirectory() as tmp:
    exe = os.path.join(tmp, "parts")
    flags = [f for f in build.FLAGS if f not in ("-shared", "-fPIC")]
    subprocess.run([build.compiler(), *flags, "-isystem", jax.ffi.include_dir(),
                    str(ROOT / "bench" / "cpu_attention_parts.cc"), "-o", exe], check=True)
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
  print(out, flush=True)
  return out.strip().splitlines()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="markdown file to append results to")
  parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
  args = parser.parse_args()
  shape, reps = SHAPE, 4
  if args.quick:  # the kernel parts still run whole: they take about a second
    shape, reps, args.out = QUICK_SHAPE, 1, quick_out("attention_bench")
  from spectralgpt_jax import hostmem
  hostmem.retain_freed_host_memory()
  layer = layer_times(shape, reps)
  parts = kernel_parts()
  if args.out:
    append_section(
        args.out, "Decoder attention, one layer, f32",
        f"q, k, v {list(shape)} (B, N, H, D); best of {reps} jitted calls, all cores.",
        "\n".join(layer) + "\n\nKernel parts, one core (`bench/cpu_attention_parts.cc`; "
        "block = 64 queries x 1024 keys, problem = one batch element and head):\n\n"
        + "\n".join(parts))


if __name__ == "__main__":
  main()
