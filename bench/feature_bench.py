"""Frozen-encoder feature extraction throughput: ours (jit, float32 and bfloat16 matmuls) vs the
PyTorch twin's eager forward.

What the linear probe, k-NN and every frozen-encoder protocol spend their time on: pooled
features of the base classifier encoder (vit_base_patch8_128: 12 blocks over all 1024 tokens of
a 12 x 128 x 128 cube), batch 32. Ours: the encoder jitted with the implementations
kernels.select picks for this machine, once per compute dtype ("f32": float32 matmuls, the
default of `evaluation` and `inference`; "bf16": `compute_dtype="bfloat16"`, bf16 matmul
operands with float32 accumulation, float32 params, LayerNorm, softmax and residual stream);
the twin: `embed` (pooled, normed) of the clean-room PyTorch model (spectralgpt_jax.torch) under torch.no_grad(),
float32, as the official code runs on CPU (eval mode). All on the same inputs, in this run,
side by side (the twin in its own process, all cores to each); reports images/s and each
ratio to the twin. What bf16 costs in accuracy: tests/evaluation/test_compute_dtype.py and
docs/evaluation.md.

  .venv/bin/python bench/feature_bench.py --out BENCHMARKS.md     # make bench-features
  .venv/bin/python bench/feature_bench.py --quick                 # smoke run: tiny model, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

from timing import QUICK_HELP, append_section, quick_out, timed

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # spectralgpt_jax (its PyTorch model too) when run as a script
MODEL, BATCH = "vit_base_patch8_128", 32
QUICK_MODEL, QUICK_BATCH = "vit_tiny_patch8_32", 4   # --quick: proves the script runs
DTYPES = {"f32": "float32", "bf16": "bfloat16"}


def cubes(model: str, batch: int) -> np.ndarray:
  from spectralgpt_jax.models import get_spec
  spec = get_spec(model)
  return np.random.default_rng(0).uniform(
      size=(batch, spec.num_bands, spec.img_size, spec.img_size)).astype(np.float32)


def ours(model_name: str, batch: int, compute_dtype: str, attention: str, warmup: int,
         steps: int) -> tuple[list[float], str]:
  """Seconds per batch of our jitted pooled features in `compute_dtype`; the ops' name."""
  import jax
  import jax.numpy as jnp
  from spectralgpt_jax.kernels import select
  from spectralgpt_jax.models import get_model, get_spec
  ops = select.ops_for(jax.devices()[:1], attention=attention,
                       max_tokens=get_spec(model_name).num_tokens)
  model = get_model(model_name, ops=ops)
  x = cubes(model_name, batch)
  params = jax.jit(model.init)(jax.random.key(0), x[:1])
  # the model of SpectralGPT.compute_model(compute_dtype): only the matmul dtype changes
  net = model.clone(runtime=model.runtime.replace(dtype=jnp.dtype(compute_dtype)))
  fn = jax.jit(lambda p, x: net.apply(p, x, method="pooled"))
  return timed(lambda: fn(params, x).block_until_ready(), warmup, steps), ops.name


def twin(model_name: str, batch: int, warmup: int, steps: int) -> list[float]:
  import torch
  from spectralgpt_jax.torch import create_model
  torch.set_num_threads(os.cpu_count() or 1)
  model = create_model(model_name).eval()
  x = torch.from_numpy(cubes(model_name, batch))

  def run():
    with torch.no_grad():
      model.embed(x)  # the pooled, normed vector, what our "pooled" returns

  return timed(run, warmup, steps)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="markdown file to append results to")
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--what", default="f32,bf16",
                      help="comma list of our extractors: f32, bf16 (the twin always runs)")
  parser.add_argument("--attention", default="auto",
                      help="config.kernels.attention for ours (auto, xla, blocked, fused)")
  parser.add_argument("--quick", action="store_true",
                      help=f"{QUICK_HELP} ({QUICK_MODEL}, batch {QUICK_BATCH}, 1 step)")
  parser.add_argument("--twin-only", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--model", default=MODEL, help=argparse.SUPPRESS)
  parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.quick:
    args.model, args.batch, args.warmup, args.steps = QUICK_MODEL, QUICK_BATCH, 1, 1
    if not args.twin_only:
      args.out = quick_out("feature_bench")
  if args.twin_only:
    print(json.dumps(twin(args.model, args.batch, args.warmup, args.steps)))
    return
  what = [w for w in args.what.split(",") if w]
  unknown = sorted(set(what) - set(DTYPES))
  if unknown:
    parser.error(f"--what: unknown {unknown}; choose from {sorted(DTYPES)}")
  from spectralgpt_jax import hostmem
  hostmem.retain_freed_host_memory()
  medians, impl = {}, ""
  for key in what:
    times, impl = ours(args.model, args.batch, DTYPES[key], args.attention, args.warmup,
                       args.steps)
    medians[key] = float(np.median(times))
    print(f"ours {key}: {medians[key]:.3f} s/batch {times}", flush=True)
  out = subprocess.run([sys.executable, __file__, "--twin-only", "--steps", str(args.steps),
                        "--warmup", str(args.warmup), "--model", args.model, "--batch",
                        str(args.batch)], check=True, capture_output=True, text=True).stdout
  t = float(np.median(json.loads(out.strip().splitlines()[-1])))
  rows = [f"| ours {key} (jit; {impl}) | {sec:.2f} | {args.batch / sec:.1f} | "
          f"**{t / sec:.2f}x** |" for key, sec in medians.items()]
  rows.append(f"| PyTorch twin, eager, no_grad, f32 | {t:.2f} | {args.batch / t:.1f} | 1.00x |")
  body = (f"| extractor | s / batch of {args.batch} (median) | images/s | vs twin |\n"
          "|---|---|---|---|\n" + "\n".join(rows) + "\n\nTarget: >= 2x the twin's throughput. "
          "bf16: matmul operands only; what it costs in accuracy is in "
          "docs/evaluation.md.")
  print(body)
  if args.out:
    append_section(args.out, f"Feature extraction, {args.model}, batch {args.batch}, "
                   f"{' and '.join(what)}",
                   f"{args.warmup} warm-up + {args.steps} timed batches each, same inputs; "
                   "twin in its own process.", body)


if __name__ == "__main__":
  main()
