"""Timing and reporting helpers shared by the benchmarks in bench/."""

from __future__ import annotations

import datetime
import os
import platform
import sys
import tempfile
import time
from typing import Callable


QUICK_HELP = ("smoke run: a tiny model, a few seconds; the numbers mean nothing and go to a temp "
              "file (printed), never to --out")


def quick_out(script: str) -> str:
  """A fresh temp markdown file for the section of a --quick run; prints its path."""
  fd, path = tempfile.mkstemp(prefix=f"{script}_quick_", suffix=".md")
  os.close(fd)
  print(f"--quick: results in {path}", flush=True)
  return path


def timed(fn: Callable[[], object], warmup: int, steps: int) -> list[float]:
  """Seconds of each of `steps` calls of fn, after `warmup` untimed calls."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def best_seconds(fn: Callable[[], object], reps: int = 5) -> float:
  """Fastest of `reps` calls of fn, after one untimed warm-up call."""
  return min(timed(fn, 1, reps))


def cpu_name() -> str:
  """The CPU's model name (/proc/cpuinfo on Linux; else what platform knows): results are only
  comparable on the same kind of CPU."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def append_section(path: str, title: str, note: str, body: str) -> None:
  """Appends a dated markdown section (machine, the command that ran, `note`, body) to path."""
  script = os.path.relpath(sys.argv[0], os.path.dirname(os.path.dirname(__file__)))
  with open(path, "a") as f:
    f.write(f"\n### {title} ({datetime.date.today()})\n\n"
            f"Machine: {cpu_name()}, {os.cpu_count()} cores. "
            f"Command: `.venv/bin/python {script} {' '.join(sys.argv[1:])}`. {note}\n\n"
            f"{body}\n")


def time_train_steps(step: Callable, state, batch, rng, warmup: int,
                     steps: int) -> tuple[list[float], object, object]:
  """Seconds of `steps` calls of a compiled train step `step(state, batch, rng)` after `warmup`
  untimed ones, each waited for (jax.block_until_ready); returns (times, the final state, the
  last step's metrics)."""
  import jax  # pylint: disable=g-import-not-at-top
  box = {"state": state, "metrics": None}

  def one():
    box["state"], box["metrics"] = step(box["state"], batch, rng)
    jax.block_until_ready(box["metrics"])

  return timed(one, warmup, steps), box["state"], box["metrics"]
