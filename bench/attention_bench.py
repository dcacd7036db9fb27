"""The decoder's attention on this CPU: plain XLA vs blocked XLA vs the fused FFI kernel.

Times forward and forward + backward of one decoder layer's attention core (batch 8, 1024 tokens,
16 heads of 32) under jit for each implementation, side by side in one run, then builds and runs
bench/cpu_attention_parts.cc: single-core timings of the kernel's parts. Appends a dated section
to the --out markdown file.

  .venv/bin/python bench/attention_bench.py --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import tempfile

import numpy as np

from timing import append_section, best_seconds

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHAPE = (8, 1024, 16, 32)  # mae_vit_base_patch8_128 decoder: B, N, H, head dim


def layer_times() -> list[str]:
  import jax
  import jax.numpy as jnp
  from spectralgpt_jax.models.attention import attend
  rng = np.random.default_rng(0)
  q, k, v, cot = (jnp.asarray(rng.normal(size=SHAPE), jnp.float32) for _ in range(4))
  rows = []
  for impl in ("xla", "blocked", "fused"):
    fwd = jax.jit(lambda q, k, v, impl=impl: attend(q, k, v, impl))
    grad = jax.jit(jax.value_and_grad(
        lambda q, k, v, impl=impl: jnp.sum(attend(q, k, v, impl) * cot), (0, 1, 2)))
    t_fwd = best_seconds(lambda: jax.block_until_ready(fwd(q, k, v)), 4)
    t_all = best_seconds(lambda: jax.block_until_ready(grad(q, k, v)), 4)
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
  args = parser.parse_args()
  from spectralgpt_jax import hostmem
  hostmem.retain_freed_host_memory()
  layer = layer_times()
  parts = kernel_parts()
  if args.out:
    append_section(
        args.out, "Decoder attention, one layer, f32",
        f"q, k, v {list(SHAPE)} (B, N, H, D); best of 4 jitted calls, all cores.",
        "\n".join(layer) + "\n\nKernel parts, one core (`bench/cpu_attention_parts.cc`; "
        "block = 64 queries x 1024 keys, problem = one batch element and head):\n\n"
        + "\n".join(parts))


if __name__ == "__main__":
  main()
