"""Reconstruction panels (PNG encoding, spectral-spatial masks) and the throughput/MFU maths."""

import struct
import zlib

import numpy as np
import pytest

from spectralgpt_jax import losses
from spectralgpt_jax.models import get_spec
from spectralgpt_jax.train import metrics, panels


def _decode_png(data: bytes) -> np.ndarray:
  assert data[:8] == b"\x89PNG\r\n\x1a\n"
  pos, idat, size = 8, b"", None
  while pos < len(data):
    (n,), tag = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
    body = data[pos + 8:pos + 8 + n]
    assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body)
    if tag == b"IHDR":
      size = struct.unpack(">II", body[:8])
    elif tag == b"IDAT":
      idat += body
    pos += 12 + n
  w, h = size
  raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
  assert (raw[:, 0] == 0).all()
  return raw[:, 1:].reshape(h, w, 3)


def test_png_round_trip():
  img = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
  np.testing.assert_array_equal(_decode_png(panels.encode_png(img)), img)


def test_pixel_mask_marks_exactly_the_masked_tubelets():
  grid, t, p = (4, 2, 2), 3, 8  # 12 bands, 16 x 16 px
  mask = np.zeros((1, 16))
  mask[0, 1 * 4 + 2 * 1 + 1] = 1  # group 1, row 1, col 1
  pm = panels.pixel_mask(mask, grid, t, p)
  assert pm.shape == (1, 12, 16, 16) and pm.sum() == 3 * 8 * 8
  assert pm[0, 3:6, 8:, 8:].all() and not pm[0, :3].any()


BANDS12 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def _panel_inputs(seed=1):
  from spectralgpt_jax.models.patch_embed import patchify
  rng = np.random.default_rng(seed)
  cube = rng.uniform(size=(2, 12, 32, 32)).astype(np.float32)
  target = np.asarray(patchify(cube, 3, 8))
  mask = (rng.uniform(size=(2, 64)) < 0.75).astype(np.float32)
  return cube, target, mask


def test_panel_layout_and_norm_pix_inverse():
  cube, target, mask = _panel_inputs()
  np.testing.assert_allclose(
      panels.denormalize_pred(np.asarray(losses.normalize_patches(target)), target), target,
      atol=1e-5)
  kw = dict(grid=(4, 4, 4), t_patch=3, patch=8, bands=BANDS12)
  img = panels.make_panel(cube, target, mask, **kw)
  lay = panels._layout(12, 32, 32, 2, 96)  # pylint: disable=protected-access
  tile = 96  # 32 px upscaled x3
  assert img.dtype == np.uint8 and img.shape == (lay["height"], lay["width"], 3)
  assert lay["th"] == tile
  # A perfect reconstruction: columns 1, 3 and 4 (original, recon, recon + visible) agree.
  y, x, step = lay["top"], panels.MARGIN, tile + panels.GAP
  first = img[y:y + tile, x:x + tile]
  np.testing.assert_array_equal(first, img[y:y + tile, x + 2 * step:x + 2 * step + tile])
  np.testing.assert_array_equal(first, img[y:y + tile, x + 3 * step:x + 3 * step + tile])
  assert panels.rgb_indices(["B02", "B03", "B04"]) == [2, 1, 0]


def test_panel_text_step_band_names_and_colour_bar():
  cube, target, mask = _panel_inputs()
  fig = panels.panel_figure(cube, target, mask, grid=(4, 4, 4), t_patch=3, patch=8,
                            bands=BANDS12, step=1200)
  texts = [t.get_text() for t in fig.texts]
  assert any("step 1200" in t for t in texts)
  for title in panels.COLUMN_TITLES:
    assert title in texts
  assert texts.count("B8A") == 2 and texts.count("B01") == 2  # every row's error tiles
  assert {"0", "0.25", "0.5+"} <= set(texts)
  img = panels.render(fig)
  lay = panels._layout(12, 32, 32, 2, 96)  # pylint: disable=protected-access
  title = img[panels.MARGIN:panels.MARGIN + panels.TITLE_H, :lay["width"] // 3]
  assert (title < 100).any()  # the title is drawn (dark glyphs on white)
  bar = img[lay["top"]:lay["height"] - panels.MARGIN, lay["bar_x"] + panels.BAR_W // 2]
  assert (bar[0] > 250).all() and (bar[-1] < 5).all()  # white at the top, black at 0


def test_error_colours_use_one_fixed_scale_across_steps():
  cube, target, mask = _panel_inputs()
  kw = dict(grid=(4, 4, 4), t_patch=3, patch=8, bands=BANDS12)
  lay = panels._layout(12, 32, 32, 2, 96)  # pylint: disable=protected-access
  y, x = panels._error_tile_origin(lay, lay["top"], 0)  # pylint: disable=protected-access

  def tile(pred, step):
    return panels.make_panel(cube, pred, mask, step=step, **kw)[y:y + lay["eh"],
                                                                 x:x + lay["ew"]]
  # A uniform error of 0.25 is mid-scale at step 100 and at step 200 (no per-panel rescaling),
  # and an error twice as large looks different (per-row percentiles would hide it).
  at100, at200 = tile(target + 0.25, 100), tile(target + 0.25, 200)
  np.testing.assert_array_equal(at100, at200)
  want = panels.error_colours(np.full((1, 1), 0.25))[0, 0] * 255  # dark orange
  np.testing.assert_allclose(at100[0, 0], want, atol=1)
  assert (tile(target + 0.5, 300) != at100).any()


def test_model_flops_and_mfu():
  spec = get_spec("mae_vit_base_patch8_128")
  f = metrics.model_flops_per_example(spec, 0.9)
  # By hand: 1024 tokens, 102 kept; a block's linear layers hold 12 d^2 weights (q, k, v, proj:
  # 4 d^2; fc1, fc2: 8 d^2), attention costs 4 N^2 d; 2 FLOPs per multiply-add, x3 for training.
  encoder = 12 * (2 * 102 * 12 * 768 ** 2 + 4 * 102 ** 2 * 768)
  decoder = 4 * (2 * 1024 * 12 * 512 ** 2 + 4 * 1024 ** 2 * 512)
  edges = 2 * 1024 * 192 * 768 + 2 * 102 * 768 * 512 + 2 * 1024 * 512 * 192
  assert f == pytest.approx(3 * (encoder + decoder + edges))
  assert metrics.model_flops_per_example(get_spec("mae_vit_base_patch8_96"), 0.9, 128) == f
  assert metrics.model_flops_per_example(spec, 0.75) > f
  assert metrics.peak_flops("TPU v4") == 275e12 and metrics.peak_flops("cpu") is None
  assert metrics.peak_flops("cpu", 0.2) == pytest.approx(2e11)
  t = metrics.Throughput(batch_size=8, flops_per_example=1e9, num_devices=2, peak=1e10)
  t.start(0)
  t._t -= 2.0  # pretend 2 s passed  # pylint: disable=protected-access
  m = t.measure(4)
  assert m["images_per_sec"] == pytest.approx(16, rel=0.05)
  assert m["mfu"] == pytest.approx(16 * 1e9 / 2e10, rel=0.05)
  line = metrics.progress_line(4, 10, {"loss": 0.5, "loss_mse": 0.3, "loss_spectral": 0.2,
                                       "lr": 1e-3, **m}, eta_s=75)
  assert "step 4/10" in line and "img/s" in line and "ETA 0:01:15" in line and "MFU" in line


def test_peak_flops_keyed_by_what_chips_report():
  """One table (spectralgpt_jax/devices.py): v5p chips report "TPU v5" and must get v5p's peak, not
  v5e's; v5e reports "TPU v5 lite"; every compile target's kind has a peak."""
  from spectralgpt_jax.compile import targets
  assert metrics.peak_flops("TPU v5") == 459e12
  assert metrics.peak_flops("TPU v5 lite") == 197e12
  assert metrics.peak_flops("TPU v6 lite") == 918e12
  assert metrics.peak_flops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4e12)
  assert metrics.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
  assert metrics.peak_flops("NVIDIA H100 PCIe") == 756e12
  assert metrics.peak_flops("TPU v5p") is None  # no chip reports this; never a substring guess
  for t in targets.TARGETS.values():
    assert metrics.peak_flops(t.device_kind) == pytest.approx(t.peak_bf16_tflops * 1e12)
