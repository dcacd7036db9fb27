"""f32 GEMMs of the base model's linear layers on this CPU: XLA:CPU, our BLAS kernel, torch (MKL).

Times the matmul shapes of the encoder's and decoder's linear layers (forward and weight gradients) under jit,
through XLA's own GEMMs and through our FFI kernel (kernels/cpu_gemm.py: MKL's sgemm split over
XLA's threads), and the same products in torch in a separate process, side by side in one run.
Appends a dated section to the --out markdown file.

  .venv/bin/python bench/gemm_bench.py --out BENCHMARKS.md
  .venv/bin/python bench/gemm_bench.py --quick     # smoke run: two small shapes, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from timing import QUICK_HELP, append_section, best_seconds, quick_out

# (M, K, N, what) of the linear layers: a [M, K] @ b [K, N], except the weight gradients ("dW"),
# which contract the tokens: a [K, M]^T @ b [K, N]. Decoder: 8192 tokens (batch 8 x 1024);
# encoder: the 816 visible ones (batch 8 x 102).
GEMMS = [(8192, 512, 512, "decoder q/k/v/proj forward"), (8192, 512, 2048, "decoder fc1 forward"),
         (8192, 2048, 512, "decoder fc2 forward"), (512, 8192, 512, "decoder q/k/v/proj dW"),
         (2048, 8192, 512, "decoder fc2 dW"), (816, 768, 768, "encoder q/k/v/proj forward"),
         (816, 768, 3072, "encoder fc1 forward"), (816, 3072, 768, "encoder fc2 forward"),
         (768, 816, 768, "encoder q/k/v/proj dW"), (3072, 816, 768, "encoder fc2 dW")]
QUICK_GEMMS = [(64, 32, 48, "small forward"), (48, 64, 32, "small dW")]


def jax_gemms(m: int, k: int, n: int, what: str) -> tuple[float, float]:
  """GFLOP/s of (XLA's GEMM, our BLAS kernel) on one shape (nan where the kernel is missing)."""
  import jax
  import jax.numpy as jnp
  from spectralgpt_jax.kernels import cpu_gemm
  dw = what.endswith("dW")
  a = jnp.ones((k, m) if dw else (m, k), jnp.float32)
  b = jnp.ones((k, n), jnp.float32)
  rate = lambda f: 2 * m * k * n / best_seconds(lambda: jax.block_until_ready(f(a, b))) / 1e9
  xla = rate(jax.jit(lambda a, b: (a.T if dw else a) @ b))  # the transpose folds into the dot
  if not cpu_gemm.available():
    return xla, float("nan")
  return xla, rate(jax.jit(lambda a, b: cpu_gemm.gemm(a, b, trans_a=dw)))


def torch_gemms(gemms: list[tuple[int, int, int, str]]) -> list[float]:
  """GFLOP/s of torch's f32 matmul (MKL) on `gemms`, all cores (run in its own process)."""
  import torch
  torch.set_num_threads(os.cpu_count() or 1)
  warm = torch.ones(2048, 2048)
  best_seconds(lambda: warm @ warm)  # MKL's first calls set up its threads
  out = []
  for m, k, n, what in gemms:
    dw = what.endswith("dW")
    a, b = torch.ones((k, m) if dw else (m, k)), torch.ones(k, n)
    out.append(2 * m * k * n / best_seconds(lambda: (a.t() if dw else a) @ b) / 1e9)
  return out


def gemm_rows(quick: bool) -> list[str]:
  gemms = QUICK_GEMMS if quick else GEMMS
  cmd = [sys.executable, __file__, "--torch-gemms"] + (["--quick"] if quick else [])
  mkl = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                  text=True).stdout.splitlines()[-1])
  rows = []
  for (m, k, n, what), torch_rate in zip(gemms, mkl):
    xla, ours = jax_gemms(m, k, n, what)
    rows.append(f"| {m} x {k} x {n} ({what}) | {xla:.0f} | {ours:.0f} | {torch_rate:.0f} |")
    print(rows[-1], flush=True)
  return ["| f32 GEMM M x K x N | XLA (GFLOP/s) | BLAS kernel (GFLOP/s) | torch/MKL (GFLOP/s) |",
          "|---|---|---|---|", *rows]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="markdown file to append results to")
  parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
  parser.add_argument("--torch-gemms", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  from spectralgpt_jax import hostmem
  hostmem.retain_freed_host_memory()
  if args.torch_gemms:
    print(json.dumps(torch_gemms(QUICK_GEMMS if args.quick else GEMMS)))
    return
  if args.quick:
    args.out = quick_out("gemm_bench")
  gemms = gemm_rows(args.quick)
  if args.out:
    append_section(args.out, "Linear-layer GEMMs, f32, XLA vs our BLAS kernel vs torch/MKL",
                   "Best of 5 calls, all cores, tuned host allocator.", "\n".join(gemms))


if __name__ == "__main__":
  main()
