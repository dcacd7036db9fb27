"""Timing helper shared by the benchmarks in bench/."""

from __future__ import annotations

import time
from typing import Callable


def best_seconds(fn: Callable[[], object], reps: int = 5) -> float:
  """Fastest of `reps` calls of fn, after one untimed warm-up call."""
  fn()
  times = []
  for _ in range(reps):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)
