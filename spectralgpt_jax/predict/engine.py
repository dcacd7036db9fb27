"""The whole-scene engine: windows in row order, batched model calls, blended rows handed out.

One code path for every caller: `evaluate` hands in-memory images (predict/sources.py:
ArraySource), `predict` reads scenes window by window (ArraySource's interface on rasterio,
predict/scene.py). A source gives, for window corners of one plan, each date's crops
[N, C, S, S] and their validity [N, S, S]; `fn(*dates)` returns scores [N, K, S, S]. Windows
are taken row band by row band (RowPlan), `batch_size` at a time across band boundaries; a
short last batch is completed by repeating its last window when `fill_last_batch` (one compiled
shape). The next batch's windows are read while the previous batch runs (JAX dispatches
asynchronously), but it is dispatched only once that batch's scores are back: one batch's
buffers in flight (two would double the model's working memory: 1.4 GB for the base
segmenter's batch of 8 on CPU). Once every window of band k is added, `emit(r0, r1, scores
[K, r1 - r0, W], valid [r1 - r0, W])` gets the finished rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from spectralgpt_jax.predict.blend import RowAccumulator
from spectralgpt_jax.predict.windows import RowPlan

Emit = Callable[[int, int, np.ndarray, np.ndarray], None]


def call_batch(fn: Callable, dates: Sequence[np.ndarray], batch_size: int, fill: bool,
               size: int):
  """fn on one batch of n <= batch_size windows (completed to batch_size with `fill`);
  returns (n, the raw output) without waiting for it."""
  n = dates[0].shape[0]
  if fill and n < batch_size:
    dates = [np.concatenate([d, np.repeat(d[-1:], batch_size - n, axis=0)]) for d in dates]
  return n, fn(*dates)


def check_scores(scores, n: int, called: int, size: int) -> np.ndarray:
  scores = np.asarray(scores, np.float32)
  if scores.ndim != 4 or scores.shape[0] != called or scores.shape[2:] != (size, size):
    raise ValueError(f"predict_batch_fn returned shape {scores.shape} for {called} tiles of "
                     f"{size}x{size}; expected [N, K, {size}, {size}]")
  return scores[:n]


def run_bands(source, fn: Callable, plan: RowPlan, weights: np.ndarray, bands: range,
              emit: Emit, *, batch_size: int, fill_last_batch: bool = True,
              progress=None) -> None:
  """Adds the windows of bands plan.warmup(bands.start) .. bands.stop - 1 and emits the rows
  of `bands` (the warm-up bands only rebuild the blend of the first band's rows)."""
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  if not len(bands):
    return
  first = plan.warmup(bands.start)
  ys, xs = plan.ys, plan.xs
  width = plan.padded[1]
  windows = ((k, int(ys[k]), int(x)) for k in range(first, bands.stop) for x in xs)
  acc: RowAccumulator | None = None
  pending = None
  next_band = first

  def consume(item):
    nonlocal acc, next_band
    chunk, valid, n, out, called = item
    scores = check_scores(out, n, called, plan.size)
    if acc is None:
      acc = RowAccumulator(scores.shape[1], plan.size, width, weights, base=int(ys[first]))
    for (_, y, x), s, v in zip(chunk, scores, valid):
      acc.add(y, x, s, v)
    last_band = chunk[-1][0]
    done = last_band if chunk[-1][2] == xs[-1] else last_band - 1
    while next_band <= done:
      end = int(ys[next_band + 1]) if next_band + 1 < len(ys) else plan.padded[0]
      scores_rows, valid_rows = acc.pop(end)
      r0, r1 = plan.rows_of(next_band)
      if next_band in bands and r1 > r0:
        emit(r0, r1, scores_rows[:, :r1 - r0, :plan.width], valid_rows[:r1 - r0, :plan.width])
      next_band += 1
    if progress is not None:
      progress.update(len(chunk))

  while chunk := list(itertools.islice(windows, batch_size)):
    dates, valid = source.windows([(y, x) for _, y, x in chunk], plan.size)
    if pending is not None:   # one batch in flight: its buffers are freed before the next
      consume(pending)
    n, out = call_batch(fn, dates, batch_size, fill_last_batch, plan.size)
    called = batch_size if fill_last_batch else n
    pending = (chunk, valid, n, out, called)
  consume(pending)


def run_cells(source, fn: Callable, size: int, rows: range, ncols: int, emit: Callable, *,
              batch_size: int, progress=None) -> None:
  """Coarse outputs: non-overlapping windows at (i * size, j * size) for the cell rows i in
  `rows`, j < ncols; `emit(i, block [D, g, ncols * g], valid [g, ncols * g])` per row, a cell
  valid when every scene pixel under it is (the last batch completed as in run_bands)."""
  windows = [(i, i * size, j * size) for i in rows for j in range(ncols)]
  blocks: dict[int, list] = {}
  pending = None

  def consume(item):
    chunk, valid, n, out = item
    scores = np.asarray(out, np.float32)[:n]
    g = scores.shape[-1]
    for (i, _, _), s, v in zip(chunk, scores, valid):
      cell_valid = v.reshape(g, size // g, g, size // g).all(axis=(1, 3))
      blocks.setdefault(i, []).append((s, cell_valid))
      if len(blocks[i]) == ncols:
        parts = blocks.pop(i)
        emit(i, np.concatenate([p[0] for p in parts], axis=-1),
             np.concatenate([p[1] for p in parts], axis=-1))
    if progress is not None:
      progress.update(len(chunk))

  for k in range(0, len(windows), batch_size):
    chunk = windows[k:k + batch_size]
    dates, valid = source.windows([(y, x) for _, y, x in chunk], size)
    if pending is not None:
      consume(pending)
    n, out = call_batch(fn, dates, batch_size, True, size)
    pending = (chunk, valid, n, out)
  if pending is not None:
    consume(pending)


def all_bands(plan: RowPlan) -> range:
  return range(plan.num_bands)


def contiguous_runs(bands: Iterable[int]) -> list[range]:
  """[3, 4, 5, 9, 10] -> [range(3, 6), range(9, 11)]."""
  runs: list[range] = []
  for b in sorted(bands):
    if runs and runs[-1].stop == b:
      runs[-1] = range(runs[-1].start, b + 1)
    else:
      runs.append(range(b, b + 1))
  return runs
