"""SIGTERM -> save a checkpoint and stop cleanly.

Single process: our own SIGTERM handler sets a flag the loop polls every step. Several
processes: the signal may reach hosts at different steps, and a checkpoint save is collective,
so we use jax's preemption sync point (initialised by jax.distributed), which agrees on one step
across hosts (through orbax's `reached_preemption`).
"""

from __future__ import annotations

import signal
import threading

import jax
from absl import logging


class PreemptionWatch:
  """`watch.reached(step, mngr)` is True once a stop was requested (and agreed on)."""

  def __init__(self):
    self.requested = False
    self._previous = None
    self._multi = jax.process_count() > 1

  def __enter__(self) -> "PreemptionWatch":
    if not self._multi and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _handle(self, signum, frame) -> None:
    del frame
    logging.warning("received signal %d: will checkpoint and stop after this step", signum)
    self.requested = True

  def reached(self, step: int, mngr) -> bool:
    if self._multi:
      self.requested = self.requested or bool(mngr.reached_preemption(step))
    return self.requested
