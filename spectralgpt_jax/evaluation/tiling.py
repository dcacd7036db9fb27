"""Tiles of images larger than the model input: whole-image prediction with overlapping tiles
averaged, and the official OSCD test tiles (numpy only).

Whole-image prediction (`predict_tiled`): tiles of `size` px start every `stride` px on each
axis, and the last tile of each axis is flush with the image edge, so every pixel is covered
(`tile_grid`). Each tile's scores are added into the image and divided by the number of tiles
covering the pixel (plain average of the overlaps; `blend="cosine"` weighs them as
`predict` does). The windows, blend and batching are the whole-scene engine of `predict`
(spectralgpt_jax/predict/): one implementation. An image smaller than the tile on an axis
is padded at its bottom / right to the tile size (`pad_mode`: "reflect", mirrored without
repeating the edge row, the default; "edge", the edge row repeated; "constant", zeros),
predicted, and its scores cropped back to the image: padded pixels are never scored.

Official OSCD test protocol (`official_oscd_tiles`, spec sections 3-4): 128 px tiles starting
at 0, 63, 126, ... on each axis while the tile fits inside the image, i.e.
ceil((L - 128 + 1) / 63) tiles per axis (a border strip may never be scored; an image smaller
than 128 px on an axis has no tile). The tiles of all test images, image by image in the given
order and row by row within an image, form the test set; it is read in that order (unshuffled)
in batches of 32 and the last partial batch is dropped (the loader's drop_last). Each kept tile
is predicted on its own and scored on its own: a pixel inside k kept tiles counts k times
(`official_oscd_confusion`).

`predict_batch_fn(*dates)` takes one [N, C, S, S] array per date (one for segmentation, two for
change detection) of raw crops of the images as given (per-tile normalisation, such as the
official per-patch min-max of OSCD, belongs in it) and returns scores [N, K, S, S].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from spectralgpt_jax.evaluation.dense_metrics import ConfusionAccumulator
from spectralgpt_jax.predict import engine, sources, windows
# Re-exported: the window plan and padding are the engine's (one implementation).
from spectralgpt_jax.predict.sources import PAD_MODES, pad_to  # noqa: F401
from spectralgpt_jax.predict.windows import coverage, tile_grid, tile_starts  # noqa: F401

OSCD_TILE = 128
OSCD_STRIDE = OSCD_TILE // 2 - 1   # 63
OSCD_BATCH = 32

PredictBatchFn = Callable[..., np.ndarray]
Images = np.ndarray | Sequence[np.ndarray]   # [C, H, W], or one [C, H, W] per date


def _dates(images: Images) -> tuple[np.ndarray, ...]:
  """One [C, H, W] array per date, all of the same H, W."""
  return sources.check_dates(images)


def _crop_batch(images_of: Sequence[tuple[np.ndarray, ...]], corners: Sequence[tuple[int, int]],
                size: int) -> list[np.ndarray]:
  """Per date [N, C, size, size]: tile n cut from the dates `images_of[n]` at `corners[n]`."""
  return [np.stack([dates[d][:, y:y + size, x:x + size]
                    for dates, (y, x) in zip(images_of, corners)])
          for d in range(len(images_of[0]))]


def _predict_batch(fn: PredictBatchFn, batch: list[np.ndarray], batch_size: int,
                   fill: bool, size: int) -> np.ndarray:
  """Scores [n, K, S, S] of one batch of n <= batch_size tiles; with `fill` a short batch is
  completed by repeating its last tile (one batch shape) and the extra rows dropped."""
  n = batch[0].shape[0]
  if fill and n < batch_size:
    batch = [np.concatenate([b, np.repeat(b[-1:], batch_size - n, axis=0)]) for b in batch]
  scores = np.asarray(fn(*batch))
  if scores.ndim != 4 or scores.shape[0] != batch[0].shape[0] or scores.shape[2:] != (size, size):
    raise ValueError(f"predict_batch_fn returned shape {scores.shape} for {batch[0].shape[0]} "
                     f"tiles of {size}x{size}; expected [N, K, {size}, {size}]")
  return scores[:n]


def predict_tiled(predict_batch_fn: PredictBatchFn, images: Images, *, size: int, stride: int,
                  batch_size: int, pad_mode: str = "reflect", fill_last_batch: bool = True,
                  blend: str = "average") -> np.ndarray:
  """Whole-image scores [K, H, W] float32, overlapping tiles blended (module docstring), by
  the whole-scene engine of `predict` (spectralgpt_jax/predict/engine.py) on in-memory images.

  Scores are blended as the function returns them (return probabilities to average
  probabilities). Tiles are cut and predicted one batch at a time.

  Args:
    predict_batch_fn: [N, C, S, S] per date -> [N, K, S, S] scores (N <= batch_size, or
      exactly batch_size with `fill_last_batch`).
    images: [C, H, W], or one [C, H, W] per date (same H, W).
    size, stride: tile size S and step in pixels (stride <= size).
    batch_size: tiles per call.
    pad_mode: padding of images smaller than the tile ("reflect" | "edge" | "constant").
    fill_last_batch: complete the last batch by repeating a tile, so that the function always
      sees `batch_size` tiles (one compiled shape).
    blend: "average" (default: the plain mean of the overlaps, the numbers evaluate reports)
      or "cosine" (predict/windows.py).
  """
  source = sources.ArraySource(images, size, pad_mode)
  plan = windows.RowPlan(source.height, source.width, size, stride)
  out: list[np.ndarray] = []
  engine.run_bands(source, predict_batch_fn, plan, windows.blend_weights(size, blend),
                   engine.all_bands(plan), lambda r0, r1, s, v: out.append(s),
                   batch_size=batch_size, fill_last_batch=fill_last_batch)
  return np.concatenate(out, axis=1)


# ---------------------------------------------------------------------------------------------
# The official OSCD test protocol.


@dataclasses.dataclass(frozen=True)
class ImageTile:
  """One tile of the official protocol: image `key`, top-left corner (y, x)."""
  key: str
  y: int
  x: int


def official_tile_starts(length: int, size: int = OSCD_TILE,
                         stride: int = OSCD_STRIDE) -> np.ndarray:
  """Starts of the tiles fitting inside [0, length): 0, stride, ... (none if length < size)."""
  return np.arange(0, max(0, length - size + 1), stride, dtype=np.int64)


def official_oscd_tiles(shapes: Mapping[str, tuple[int, int]], *, size: int = OSCD_TILE,
                        stride: int = OSCD_STRIDE,
                        batch_size: int = OSCD_BATCH) -> list[ImageTile]:
  """The kept test tiles of the official protocol, in the official order.

  Args:
    shapes: image key (e.g. the OSCD city) -> (H, W), in the order of the test list.
    size, stride, batch_size: the protocol's (128, 63, 32); batch_size 0 keeps every tile.
  """
  tiles = []
  for key, (h, w) in shapes.items():
    for y in official_tile_starts(h, size, stride):
      tiles += [ImageTile(key, int(y), int(x)) for x in official_tile_starts(w, size, stride)]
  if batch_size:
    tiles = tiles[:len(tiles) // batch_size * batch_size]
  return tiles


def official_coverage(tiles: Sequence[ImageTile], shapes: Mapping[str, tuple[int, int]],
                      size: int = OSCD_TILE) -> dict[str, np.ndarray]:
  """key -> [H, W] int64: how many times each pixel is scored (0 = never)."""
  out = {}
  for key, (h, w) in shapes.items():
    corners = np.array([(t.y, t.x) for t in tiles if t.key == key], np.int64).reshape(-1, 2)
    out[key] = coverage(h, w, corners, size)
  return out


def predict_tiles(predict_batch_fn: PredictBatchFn, images: Mapping[str, Images],
                  tiles: Sequence[ImageTile], *, size: int = OSCD_TILE,
                  batch_size: int = OSCD_BATCH) -> Iterator[tuple[ImageTile, np.ndarray]]:
  """(tile, scores [K, S, S]) of each tile, predicted on its own crop, `batch_size` at a time
  (a last partial batch is completed by repeating a tile)."""
  dates = {key: _dates(images[key]) for key in dict.fromkeys(t.key for t in tiles)}
  for t in tiles:
    h, w = dates[t.key][0].shape[1:]
    if not (0 <= t.y <= h - size and 0 <= t.x <= w - size):
      raise ValueError(f"tile {t} of {size} px leaves its image of {(h, w)}")
  for i in range(0, len(tiles), batch_size):
    chunk = tiles[i:i + batch_size]
    batch = _crop_batch([dates[t.key] for t in chunk], [(t.y, t.x) for t in chunk], size)
    yield from zip(chunk, _predict_batch(predict_batch_fn, batch, batch_size, True, size))


def official_oscd_confusion(predict_batch_fn: PredictBatchFn, images: Mapping[str, Images],
                            labels: Mapping[str, np.ndarray], *, size: int = OSCD_TILE,
                            stride: int = OSCD_STRIDE, batch_size: int = OSCD_BATCH,
                            num_classes: int = 2) -> ConfusionAccumulator:
  """Confusion counts of the official OSCD protocol over `images` (key -> the two dates, in
  the test list's order) against `labels` (key -> [H, W], -1 ignored): argmax of each kept
  tile's own scores against the tile's labels, summed over tiles."""
  shapes = {}
  for key in images:
    if key not in labels:
      raise ValueError(f"no label map for image {key!r}")
    shapes[key] = tuple(np.asarray(labels[key]).shape)
    if _dates(images[key])[0].shape[1:] != shapes[key]:
      raise ValueError(f"image {key!r} is {_dates(images[key])[0].shape[1:]} but its label "
                       f"map is {shapes[key]}")
  acc = ConfusionAccumulator(num_classes)
  tiles = official_oscd_tiles(shapes, size=size, stride=stride, batch_size=batch_size)
  for tile, scores in predict_tiles(predict_batch_fn, images, tiles, size=size,
                                    batch_size=batch_size or OSCD_BATCH):
    truth = np.asarray(labels[tile.key])[tile.y:tile.y + size, tile.x:tile.x + size]
    acc.update(truth, scores.argmax(0), name=tile.key)
  return acc

