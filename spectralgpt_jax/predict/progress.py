"""A progress line on stderr: windows done / total, windows/s and ETA, at most once a second
(and at the end); off when `enabled` is False."""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
  s = int(round(seconds))
  return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:

  def __init__(self, total: int, label: str = "predict", enabled: bool = True, stream=None):
    self.total, self.label, self.enabled = total, label, enabled
    self.stream = stream or sys.stderr
    self.done, self.start, self.shown = 0, time.monotonic(), 0.0

  @property
  def rate(self) -> float:
    return self.done / max(time.monotonic() - self.start, 1e-9)

  def update(self, n: int) -> None:
    self.done += n
    now = time.monotonic()
    if self.enabled and (now - self.shown >= 1.0 or self.done >= self.total):
      self.shown = now
      eta = (self.total - self.done) / max(self.rate, 1e-9)
      end = "\n" if self.done >= self.total else "\r"
      self.stream.write(f"{self.label}: {self.done}/{self.total} windows  {self.rate:.2f} "
                        f"windows/s  ETA {_clock(eta)}{end}")
      self.stream.flush()
