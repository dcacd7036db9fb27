"""Cost of checkpoint integrity on the base model (mae_vit_base_patch8_128, 98.6M params):
checksums at save (on the device, state = params + AdamW mu and nu) and verification at read.

  python bench/checkpoint_verify_bench.py [--out BENCHMARKS.md]
  python bench/checkpoint_verify_bench.py --quick     # smoke run: tiny model, seconds

Times: checksums of the full training state as jax arrays (what `save` adds), of the params as
numpy (what `read_checkpoint` adds), and `read_checkpoint` of a written step with and without
the checksum item (the second is the unverified path).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

from timing import QUICK_HELP, cpu_name, quick_out  # bench/ is on sys.path as a script

import jax
import numpy as np

from spectralgpt_jax import checkpoints as ckpt
from spectralgpt_jax.models import get_model, shapes

MODEL, QUICK_MODEL = "mae_vit_base_patch8_128", "mae_vit_tiny_patch8_32"


def _best(fn, n=3) -> float:
  times = []
  for _ in range(n):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return min(times)


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--out", default=None, help="append the table to this markdown file")
  ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
  args = ap.parse_args()
  name = MODEL
  if args.quick:
    name, args.out = QUICK_MODEL, quick_out("checkpoint_verify_bench")
  model = get_model(name)
  abstract = shapes.param_shapes(model)
  rng = np.random.default_rng(0)
  params = jax.tree.map(lambda s: rng.standard_normal(s.shape, np.float32), abstract)
  n = shapes.count(params)
  state_dev = jax.device_put({"params": params, "mu": params, "nu": params})
  jax.block_until_ready(state_dev)
  ckpt.checksums(state_dev)  # compile
  t_dev = _best(lambda: ckpt.checksums(state_dev))
  t_host = _best(lambda: ckpt.checksums({"params": params}))
  tmp = tempfile.mkdtemp()
  try:
    step_dir = ckpt.write_checkpoint(tmp, params, {"model": {"name": name}})
    t_read = _best(lambda: ckpt.read_checkpoint(tmp), 2)
    shutil.rmtree(step_dir / ckpt.CHECKSUMS)
    with ckpt.allow_unverified():  # a step without its record is refused otherwise
      t_plain = _best(lambda: ckpt.read_checkpoint(tmp), 2)
  finally:
    shutil.rmtree(tmp)
  mb = n * 4 / 2**20
  rows = [
      ("checksums at save: params + AdamW mu, nu on the device (jax.jit)",
       f"{3 * mb:.0f}", f"{t_dev:.3f}", f"{3 * mb / 1024 / t_dev:.2f}"),
      ("checksums at read: params as numpy (host)", f"{mb:.0f}", f"{t_host:.3f}",
       f"{mb / 1024 / t_host:.2f}"),
      ("read_checkpoint, verified", f"{mb:.0f}", f"{t_read:.3f}", ""),
      ("read_checkpoint, no checksum item (allow_unverified)", f"{mb:.0f}", f"{t_plain:.3f}", ""),
  ]
  lines = [f"### Checkpoint integrity: checksum cost on {name} ({n / 1e6:.1f}M params) "
           f"({time.strftime('%Y-%m-%d')})", "",
           f"Machine: {cpu_name()}, {os.cpu_count()} CPU cores, jax "
           f"{jax.__version__} on {jax.devices()[0].platform}. Command: `python "
           f"bench/checkpoint_verify_bench.py {' '.join(sys.argv[1:])}`. Best of 3 (reads: 2). Two "
           "32-bit sums per array (plain and position-weighted) of its bits.", "",
           "| what | MiB | seconds | GiB/s |", "|---|---|---|---|"]
  lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
  text = "\n".join(lines) + "\n"
  print(text)
  if args.out:
    with open(args.out, "a") as f:
      f.write("\n" + text)


if __name__ == "__main__":
  main()
