"""Reconstruction panels: what the MAE sees and what it predicts, as one labelled RGB PNG.

Title: the training step and the mask ratio. One row per example, under titled columns:
  input (RGB composite B4/B3/B2) | masked input | reconstruction | reconstruction with the
  visible tubelets pasted back | |reconstruction - input| per band (one tile per band, named).
The masking is spectral as well as spatial (a token is 3 bands x p x p), so in the masked
input a pixel can lose some of its R, G, B channels and not others: lost channels are grey.
The RGB stretch (2nd-98th percentile of the original, per channel) is shared by all columns.

Errors use one fixed colour scale, drawn as a colour bar: black at 0 to white at
`ERROR_RANGE` = 0.5 in normalized units (half the [0, 1] range of min-max or sentinel_clip
input, half a standard deviation for z-score), larger errors saturate. Panels of different
steps and runs are therefore comparable tile by tile. Errors are shown at every pixel, masked
or visible (the loss counts the masked tubelets only).

Pixels are composed in numpy (tubelet layout from the model's patchify); the text is drawn by
matplotlib's Agg canvas (no pyplot, no global backend); `encode_png` needs only zlib.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np

from spectralgpt_jax.models.patch_embed import fold_dates, patchify, unpatchify

RGB_BANDS = ("B04", "B03", "B02")
ERROR_RANGE = 0.5  # |error| in normalized units at the top of the colour scale
GAP = 2           # pixels of white between tiles
ROW_GAP = 6       # between example rows
MARGIN = 6
TITLE_H, HEADER_H, LABEL_H = 22, 16, 11   # title, column titles, band names (pixels)
BAR_W, BAR_TICKS_W = 12, 54                # colour bar and its tick labels (pixels)
COLUMN_TITLES = ("input (B4/B3/B2)", "masked input", "reconstruction", "recon. + visible")
FONT = {"family": "DejaVu Sans"}


def encode_png(rgb: np.ndarray) -> bytes:
  """uint8 [H, W, 3] -> PNG bytes (8-bit RGB, no filtering)."""
  rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
  h, w, c = rgb.shape
  if c != 3:
    raise ValueError(f"encode_png wants [H, W, 3], got {rgb.shape}")

  def chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

  raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
          + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _resize_nearest(img: np.ndarray, h: int, w: int) -> np.ndarray:
  yi = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
  xi = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
  return img[yi][:, xi]


def _hot(x: np.ndarray) -> np.ndarray:
  """[H, W] in [0, 1] -> [H, W, 3] black-red-yellow-white."""
  x = np.clip(x, 0, 1)[..., None]
  return np.clip(np.concatenate([3 * x, 3 * x - 1, 3 * x - 2], -1), 0, 1)


def _stretch(rgb: np.ndarray, ref: np.ndarray) -> np.ndarray:
  """[3, H, W] -> [H, W, 3] in [0, 1], percentiles of `ref` per channel."""
  lo = np.percentile(ref, 2, axis=(1, 2), keepdims=True)
  hi = np.percentile(ref, 98, axis=(1, 2), keepdims=True)
  return np.clip((rgb - lo) / np.maximum(hi - lo, 1e-6), 0, 1).transpose(1, 2, 0)


def pixel_mask(mask: np.ndarray, grid: tuple[int, int, int], t_patch: int,
               patch: int) -> np.ndarray:
  """Token mask [N, G*h*w] (1 = removed) -> band-pixel mask [N, G*t, h*p, w*p]."""
  n = mask.shape[0]
  g, h, w = grid
  m = mask.reshape(n, g, 1, h, 1, w, 1)
  m = np.broadcast_to(m, (n, g, t_patch, h, patch, w, patch))
  return m.reshape(n, g * t_patch, h * patch, w * patch)


def denormalize_pred(pred: np.ndarray, target: np.ndarray, eps: float = 1e-6) -> np.ndarray:
  """Undo the norm_pix target standardisation with the true patches' mean/var (ddof=1)."""
  mean = target.mean(-1, keepdims=True)
  var = target.var(-1, keepdims=True, ddof=1)
  return pred * np.sqrt(var + eps) + mean


def rgb_indices(bands: Sequence[str]) -> list[int]:
  """Positions of B4, B3, B2 in `bands` (the first three bands when any is missing)."""
  bands = list(bands)
  if all(b in bands for b in RGB_BANDS):
    return [bands.index(b) for b in RGB_BANDS]
  return [0, min(1, len(bands) - 1), min(2, len(bands) - 1)]


def error_colours(err: np.ndarray, error_range: float = ERROR_RANGE) -> np.ndarray:
  """|error| [H, W] -> [H, W, 3] on the fixed scale 0 (black) .. error_range (white)."""
  return _hot(np.asarray(err, np.float32) / np.float32(error_range))


def _layout(c: int, h: int, w: int, rows: int, min_tile: int) -> dict[str, int]:
  """Pixel geometry of the panel: RGB tile th x tw, error tiles eh x ew in 2 rows."""
  scale = max(1, math.ceil(min_tile / h))
  th, tw = h * scale, w * scale
  cols = math.ceil(c / 2)
  eh = (th - GAP - 2 * LABEL_H) // 2
  ew = max(1, round(eh * w / h))
  err_x = MARGIN + 4 * (tw + GAP) + GAP
  bar_x = err_x + cols * (ew + GAP) + 2 * GAP
  top = MARGIN + TITLE_H + HEADER_H
  return {"th": th, "tw": tw, "eh": eh, "ew": ew, "cols": cols, "err_x": err_x,
          "bar_x": bar_x, "top": top, "width": bar_x + BAR_W + BAR_TICKS_W + MARGIN,
          "height": top + rows * th + (rows - 1) * ROW_GAP + MARGIN}


def _rgb_tiles(cube, recon, pmask, rgb_idx, th, tw) -> list[np.ndarray]:
  ref = cube[rgb_idx]
  original = _stretch(ref, ref)
  masked = np.where(pmask[rgb_idx].transpose(1, 2, 0) > 0, 0.5, original)
  recon_rgb = _stretch(recon[rgb_idx], ref)
  pasted = _stretch(np.where(pmask[rgb_idx] > 0, recon[rgb_idx], ref), ref)
  return [_resize_nearest(t, th, tw) for t in (original, masked, recon_rgb, pasted)]


def _error_tile_origin(lay: dict[str, int], row_y: int, band: int) -> tuple[int, int]:
  """(y, x) of band `band`'s error tile (below its name strip) in a row starting at row_y."""
  r, col = divmod(band, lay["cols"])
  y = row_y + r * (LABEL_H + lay["eh"] + GAP) + LABEL_H
  return y, lay["err_x"] + col * (lay["ew"] + GAP)


def _pixels(cube, recon, pmask, rgb_idx, lay, error_range) -> np.ndarray:
  """The panel's pixels [H, W, 3] in [0, 1] (white background, no text)."""
  canvas = np.ones((lay["height"], lay["width"], 3), np.float32)
  th, tw, eh, ew = lay["th"], lay["tw"], lay["eh"], lay["ew"]
  for i in range(cube.shape[0]):
    y0 = lay["top"] + i * (th + ROW_GAP)
    for k, tile in enumerate(_rgb_tiles(cube[i], recon[i], pmask[i], rgb_idx, th, tw)):
      x0 = MARGIN + k * (tw + GAP)
      canvas[y0:y0 + th, x0:x0 + tw] = tile
    err = np.abs(recon[i] - cube[i])
    for b in range(cube.shape[1]):
      y, x = _error_tile_origin(lay, y0, b)
      canvas[y:y + eh, x:x + ew] = _resize_nearest(error_colours(err[b], error_range), eh, ew)
  bar_h = lay["height"] - lay["top"] - MARGIN
  ramp = np.linspace(1.0, 0.0, bar_h, dtype=np.float32)[:, None].repeat(BAR_W, 1)
  canvas[lay["top"]:lay["top"] + bar_h, lay["bar_x"]:lay["bar_x"] + BAR_W] = _hot(ramp)
  return canvas


def panel_figure(cube: np.ndarray, pred: np.ndarray, mask: np.ndarray, *,
                 grid: tuple[int, int, int], t_patch: int, patch: int, bands: Sequence[str],
                 step: int | None = None, norm_pix: bool = False,
                 error_range: float = ERROR_RANGE, min_tile: int = 96):
  """The panel as a matplotlib Figure (pixels via figimage, 1 figure pixel = 1 image pixel).

  Args:
    cube: [N, C, H, W] model input (normalised), or a series [N, T, C, H, W] (its dates side
      by side as T*C bands: RGB of the first date, errors of every date's bands, named
      "d2 B04" from the second date on);
    pred: [N, L, t*p*p] model output; mask: [N, L] (1 = removed);
    grid: token grid (G, H/p, W/p); bands: names of the C bands; step: shown in the title;
    error_range: |error| at the top of the fixed colour scale (normalized units).
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  dates = np.asarray(cube).shape[1] if np.asarray(cube).ndim == 5 else 1
  cube = np.asarray(fold_dates(np.asarray(cube, np.float32)))
  pred = np.asarray(pred, np.float32)
  if norm_pix:
    pred = denormalize_pred(pred, np.asarray(patchify(cube, t_patch, patch)))
  recon = np.asarray(unpatchify(pred, grid, t_patch, patch))
  pmask = pixel_mask(np.asarray(mask), grid, t_patch, patch)
  names = [b if d == 0 else f"d{d + 1} {b}" for d in range(dates) for b in bands]
  if len(names) != cube.shape[1]:
    raise ValueError(f"{len(bands)} band names for {cube.shape[1] // dates} bands per date")
  lay = _layout(cube.shape[1], cube.shape[-2], cube.shape[-1], cube.shape[0], min_tile)
  pixels = _pixels(cube, recon, pmask, rgb_indices(bands), lay, error_range)
  # +0.5: the Agg canvas truncates the figure size to whole pixels
  fig = Figure(figsize=((lay["width"] + 0.5) / 100, (lay["height"] + 0.5) / 100), dpi=100,
               facecolor="white")
  fig.figimage(pixels, xo=0, yo=0, origin="upper")

  def text(x, y, s, size, **kw):  # (x, y) in pixels from the top-left corner
    fig.text(x / lay["width"], 1 - y / lay["height"], s, fontsize=size, fontdict=FONT, **kw)

  ratio = float(np.asarray(mask).mean())
  title = "MAE reconstruction" + (f", step {step}" if step is not None else "")
  text(MARGIN, MARGIN + TITLE_H / 2, f"{title} (mask ratio {ratio:.0%})", 10, va="center",
       weight="bold")
  header_y = MARGIN + TITLE_H + HEADER_H / 2
  for k, name in enumerate(COLUMN_TITLES):
    text(MARGIN + k * (lay["tw"] + GAP) + lay["tw"] / 2, header_y, name, 7, ha="center",
         va="center")
  text(lay["err_x"], header_y, "|recon. - input| per band, normalized units", 7, va="center")
  text(lay["bar_x"], header_y, "|error|", 7, va="center")
  for i in range(cube.shape[0]):
    y0 = lay["top"] + i * (lay["th"] + ROW_GAP)
    for b, name in enumerate(names):
      y, x = _error_tile_origin(lay, y0, b)
      text(x + lay["ew"] / 2, y - LABEL_H / 2, name, 6, ha="center", va="center")
  bar_h = lay["height"] - lay["top"] - MARGIN
  for frac, align in ((0.0, "bottom"), (0.5, "center"), (1.0, "top")):
    label = f"{frac * error_range:g}" + ("+" if frac == 1.0 else "")
    text(lay["bar_x"] + BAR_W + 3, lay["top"] + (1 - frac) * (bar_h - 1), label, 7,
         va=align)
  return fig


def render(fig) -> np.ndarray:
  """A Figure -> uint8 [H, W, 3] through matplotlib's Agg canvas (no pyplot)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  canvas = FigureCanvasAgg(fig)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def make_panel(cube: np.ndarray, pred: np.ndarray, mask: np.ndarray, *,
               grid: tuple[int, int, int], t_patch: int, patch: int, bands: Sequence[str],
               step: int | None = None, norm_pix: bool = False,
               error_range: float = ERROR_RANGE, min_tile: int = 96) -> np.ndarray:
  """uint8 [H, W, 3] panel (`panel_figure` rendered; arguments as there)."""
  return render(panel_figure(cube, pred, mask, grid=grid, t_patch=t_patch, patch=patch,
                             bands=bands, step=step, norm_pix=norm_pix,
                             error_range=error_range, min_tile=min_tile))
