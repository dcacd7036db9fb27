"""Tiles of images larger than the model input: whole-image prediction with overlapping tiles
averaged, and the official OSCD test tiles (numpy only).

Whole-image prediction (`predict_tiled`): tiles of `size` px start every `stride` px on each
axis, and the last tile of each axis is flush with the image edge, so every pixel is covered
(`tile_grid`). Each tile's scores are added into the image and divided by the number of tiles
covering the pixel (plain average of the overlaps). An image smaller than the tile on an axis
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

OSCD_TILE = 128
OSCD_STRIDE = OSCD_TILE // 2 - 1   # 63
OSCD_BATCH = 32
PAD_MODES = ("reflect", "edge", "constant")

PredictBatchFn = Callable[..., np.ndarray]
Images = np.ndarray | Sequence[np.ndarray]   # [C, H, W], or one [C, H, W] per date


def tile_starts(length: int, size: int, stride: int) -> np.ndarray:
  """Starts of tiles covering [0, length): 0, stride, ..., last flush with the end
  ([0] when length <= size)."""
  if size < 1 or stride < 1:
    raise ValueError(f"tile size and stride must be >= 1, got size={size} stride={stride}")
  if stride > size:
    raise ValueError(f"stride {stride} > tile size {size} would leave pixels uncovered")
  if length <= size:
    return np.zeros(1, np.int64)
  starts = np.arange(0, length - size + 1, stride)
  if starts[-1] != length - size:
    starts = np.append(starts, length - size)
  return starts.astype(np.int64)


def tile_grid(height: int, width: int, size: int, stride: int) -> np.ndarray:
  """[N, 2] int64 (y, x) top-left corners covering the image, row by row."""
  ys, xs = tile_starts(height, size, stride), tile_starts(width, size, stride)
  return np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


def coverage(height: int, width: int, corners: np.ndarray, size: int) -> np.ndarray:
  """[H, W] int64: how many of the tiles at `corners` ([N, 2] y, x) contain each pixel."""
  out = np.zeros((height, width), np.int64)
  for y, x in np.asarray(corners, np.int64).reshape(-1, 2):
    out[y:y + size, x:x + size] += 1
  return out


def _dates(images: Images) -> tuple[np.ndarray, ...]:
  """One [C, H, W] array per date, all of the same H, W."""
  dates = (images,) if isinstance(images, np.ndarray) else tuple(np.asarray(d) for d in images)
  if not dates:
    raise ValueError("no image given")
  for i, d in enumerate(dates):
    if d.ndim != 3:
      raise ValueError(f"image of date {i} must be [C, H, W], got shape {d.shape}")
    if d.shape[1:] != dates[0].shape[1:]:
      raise ValueError(f"image of date {i} is {d.shape[1:]}, date 0 is {dates[0].shape[1:]}")
  return dates


def pad_to(image: np.ndarray, size: int, mode: str = "reflect") -> np.ndarray:
  """[C, H, W] padded at the bottom / right to at least [C, size, size] (module docstring)."""
  if mode not in PAD_MODES:
    raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {mode!r}")
  _, h, w = image.shape
  pad = ((0, 0), (0, max(0, size - h)), (0, max(0, size - w)))
  if pad[1][1] == 0 and pad[2][1] == 0:
    return image
  if mode == "reflect" and min(h, w) < 2:
    mode = "edge"   # nothing to mirror in a one-pixel axis
  return np.pad(image, pad, mode=mode)


def _crop_batch(sources: Sequence[tuple[np.ndarray, ...]], corners: Sequence[tuple[int, int]],
                size: int) -> list[np.ndarray]:
  """Per date [N, C, size, size]: tile n cut from the dates `sources[n]` at `corners[n]`."""
  return [np.stack([dates[d][:, y:y + size, x:x + size]
                    for dates, (y, x) in zip(sources, corners)])
          for d in range(len(sources[0]))]


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
                  batch_size: int, pad_mode: str = "reflect",
                  fill_last_batch: bool = True) -> np.ndarray:
  """Whole-image scores [K, H, W] float32, overlapping tiles averaged (module docstring).

  Scores are averaged as the function returns them (return probabilities to average
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
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  dates = _dates(images)
  _, h, w = dates[0].shape
  padded = tuple(pad_to(d, size, pad_mode) for d in dates)
  ph, pw = padded[0].shape[1:]
  corners = [tuple(c) for c in tile_grid(ph, pw, size, stride).tolist()]
  total = None
  for i in range(0, len(corners), batch_size):
    chunk = corners[i:i + batch_size]
    batch = _crop_batch([padded] * len(chunk), chunk, size)
    scores = _predict_batch(predict_batch_fn, batch, batch_size, fill_last_batch, size)
    if total is None:
      total = np.zeros((scores.shape[1], ph, pw), np.float32)
    for (y, x), s in zip(chunk, scores):
      total[:, y:y + size, x:x + size] += s
  total /= coverage(ph, pw, np.asarray(corners), size)
  return total[:, :h, :w]


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

