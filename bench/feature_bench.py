"""Frozen-encoder feature extraction throughput: ours (jit) vs the PyTorch twin's eager forward.

What the linear probe, k-NN and every frozen-encoder protocol spend their time on: pooled
features of the base classifier encoder (vit_base_patch8_128: 12 blocks over all 1024 tokens of
a 12 x 128 x 128 cube), batch 32, float32. Ours: the encoder jitted with the implementations
kernels.select picks for this machine; the twin: `forward_features` + mean pooling of the
clean-room PyTorch twin under torch.no_grad(), as the official code would run it (eval mode).
Both in this run, side by side (the twin in its own process); reports images/s and the ratio.

  .venv/bin/python bench/feature_bench.py --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

from timing import append_section, timed

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # spectralgpt_jax (its PyTorch model too) when run as a script
MODEL, BATCH = "vit_base_patch8_128", 32


def cubes() -> np.ndarray:
  return np.random.default_rng(0).uniform(size=(BATCH, 12, 128, 128)).astype(np.float32)


def ours(warmup: int, steps: int) -> tuple[list[float], str]:
  import jax
  from spectralgpt_jax.kernels import select
  from spectralgpt_jax.models import get_model, get_spec
  ops = select.ops_for(jax.devices()[:1], max_tokens=get_spec(MODEL).num_tokens)
  model = get_model(MODEL, ops=ops)
  x = cubes()
  params = jax.jit(model.init)(jax.random.key(0), x[:1])
  fn = jax.jit(lambda p, x: model.apply(p, x, method="pooled"))
  return timed(lambda: fn(params, x).block_until_ready(), warmup, steps), ops.name


def twin(warmup: int, steps: int) -> list[float]:
  import torch
  from spectralgpt_jax.torch import create_model
  torch.set_num_threads(os.cpu_count() or 1)
  model = create_model(MODEL).eval()
  x = torch.from_numpy(cubes())

  def run():
    with torch.no_grad():
      model.pool(model.forward_features(x))

  return timed(run, warmup, steps)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="", help="markdown file to append results to")
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--warmup", type=int, default=1)
  parser.add_argument("--twin-only", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.twin_only:
    print(json.dumps(twin(args.warmup, args.steps)))
    return
  from spectralgpt_jax import hostmem
  hostmem.retain_freed_host_memory()
  ours_times, impl = ours(args.warmup, args.steps)
  out = subprocess.run([sys.executable, __file__, "--twin-only", "--steps", str(args.steps),
                        "--warmup", str(args.warmup)], check=True, capture_output=True,
                       text=True).stdout
  twin_times = json.loads(out.strip().splitlines()[-1])
  o, t = float(np.median(ours_times)), float(np.median(twin_times))
  rows = [f"| ours (jit; {impl}) | {o:.2f} | {BATCH / o:.1f} |",
          f"| PyTorch twin, eager, no_grad | {t:.2f} | {BATCH / t:.1f} |"]
  body = ("| extractor | s / batch of 32 (median) | images/s |\n|---|---|---|\n"
          + "\n".join(rows) + f"\n\nRatio: **{t / o:.2f}x** the twin's throughput "
          "(target >= 2x).")
  print(body)
  if args.out:
    append_section(args.out, f"Feature extraction, {MODEL}, batch {BATCH}, f32",
                   f"{args.warmup} warm-up + {args.steps} timed batches each; twin in its own "
                   "process.", body)


if __name__ == "__main__":
  main()
