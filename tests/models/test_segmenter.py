"""Dense models: official head parameter counts, building blocks against torch, shapes, layers."""

import flax.linen as nn
import jax
import numpy as np
import pytest
import torch

from spectralgpt_jax.models import Runtime, get_model, shapes
from spectralgpt_jax.models import upernet

ENCODER = ("patch_embed", "pos_embed_spatial", "pos_embed_temporal", "blocks")
TINY_HEAD = dict(pyramid_channels=(32, 32, 64, 64), head_channels=32, pyramid_groups=8,
                 head_groups=8)


def _official_head_count(num_classes: int, d: int = 768, t: int = 4) -> int:
  """Hand count of the official head from its state_dict shapes (spec §2 downstream keys)."""
  conv = lambda i, o, k=1: i * o * k * k + o
  gn = lambda c: 2 * c
  pyramid = (conv(d, 512) + gn(512) + conv(512, 256, 8)          # conv0
             + conv(d, 512) + gn(512) + conv(512, 512, 4)        # conv1
             + conv(d, 1024) + gn(1024) + conv(1024, 1024, 2)    # conv2
             + conv(d, 2048) + gn(2048))                          # conv3
  ppm = 4 * conv(2048, 256) + conv(3072, 256) + gn(256)
  fuse = (conv(1024, 256) + conv(512, 256) + conv(256, 256)       # Conv_fuse1..3
          + 3 * (conv(256, 256) + gn(256)) + 3 * gn(256)          # Conv_fuse{k}_ + their GNs
          + conv(1024, 256) + gn(256) + conv(256, 256))           # fuse_all, conv_x1
  return pyramid + ppm + fuse + conv(256, num_classes, 3) + (t + 1)  # cls_seg, fc


@pytest.mark.parametrize("name,classes,official_total", [
    ("seg_vit_base_patch8_128", 13, 109_244_946), ("cd_vit_base_patch8_128", 2, 109_219_591)])
def test_official_head_counts(name, classes, official_total):
  params = shapes.param_shapes(get_model(name))
  encoder = shapes.count({k: v for k, v in params.items() if k in ENCODER})
  head = shapes.count({k: v for k, v in params.items() if k not in ENCODER})
  assert encoder == 85_402_368                      # spec: backbone of both official models
  assert head == _official_head_count(classes)
  # The official models also hold an unused final norm (2 x 768), not created here.
  assert encoder + head + 2 * 768 == official_total


def test_resize_bilinear_matches_torch_align_corners():
  x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
  ours = np.asarray(upernet.resize_bilinear(x, (11, 16)))
  ref = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), (11, 16),
                                        mode="bilinear", align_corners=True)
  np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), atol=1e-5)


@pytest.mark.parametrize("out", [1, 2, 3, 6])
def test_adaptive_max_pool_matches_torch(out):
  x = np.random.default_rng(1).normal(size=(2, 16, 16, 4)).astype(np.float32)
  ours = np.asarray(upernet.adaptive_pool(x, out, "max"))
  ref = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), out)
  np.testing.assert_allclose(ours, ref.permute(0, 2, 3, 1).numpy(), atol=0)


@pytest.mark.parametrize("hw", [(4, 4), (4, 6), (5, 7)])
def test_pangaea_neck_pool_matches_torch_max_pool_on_any_grid(hw):
  """neck_3's pool is MaxPool2d(2), also on non-square and odd token grids."""
  x = np.random.default_rng(2).normal(size=(2, *hw, 3)).astype(np.float32)
  ours = np.asarray(upernet.max_pool_2x2(x))
  ref = torch.nn.functional.max_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), 2)
  np.testing.assert_array_equal(ours, ref.permute(0, 2, 3, 1).numpy())


def test_pixel_deconv_matches_torch_conv_transpose():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)
  mod = upernet.PixelDeconv(5, 4)
  params = nn.unbox(mod.init(jax.random.key(0), x))["params"]
  ours = np.asarray(mod.apply({"params": params}, x))
  conv = torch.nn.ConvTranspose2d(6, 5, 4, stride=4)
  with torch.no_grad():
    conv.weight.copy_(torch.from_numpy(np.asarray(params["kernel"]).transpose(0, 3, 1, 2)))
    conv.bias.copy_(torch.from_numpy(np.asarray(params["bias"])))
    ref = conv(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
  np.testing.assert_allclose(ours, ref, atol=1e-5)


def _cube(seed=0, size=32):
  return np.random.default_rng(seed).random((2, 12, size, size)).astype(np.float32)


def test_change_model_log_probs_and_fusions():
  x, x2 = _cube(0), _cube(1)
  for fusion in ("difference", "concat"):
    m = get_model("cd_vit_tiny_patch8_32", fusion=fusion, **TINY_HEAD)
    v = m.init(jax.random.key(0), x, x2)
    y = np.asarray(m.apply(v, x, x2))
    assert y.shape == (2, 32, 32, 2)
    np.testing.assert_allclose(np.exp(y).sum(-1), 1.0, atol=1e-5)
  # Difference of identical dates: the features cancel, so the output ignores the image.
  m = get_model("cd_vit_tiny_patch8_32", **TINY_HEAD)
  v = m.init(jax.random.key(0), x, x2)
  np.testing.assert_allclose(m.apply(v, x, x), m.apply(v, x2, x2), atol=1e-5)
  with pytest.raises(ValueError, match="two dates"):
    m.apply(v, x)


def test_pangaea_head_and_any_input_size():
  m = get_model("seg_vit_tiny_patch8_32", head="pangaea", feature_layers=(0, 1, 1, 1),
                head_channels=32, head_groups=8)
  v = m.init(jax.random.key(0), _cube())
  assert m.apply(v, _cube()).shape == (2, 32, 32, 2)
  assert m.apply(v, _cube(size=64)).shape == (2, 64, 64, 2)   # spatial table resized
  assert "neck" in v["params"] and "fc" not in v["params"]


def test_collected_layers_scanned_equal_unrolled():
  from spectralgpt_jax.models.transformer import TransformerStack, to_scanned
  x = np.random.default_rng(3).normal(size=(2, 8, 16)).astype(np.float32)
  unrolled = TransformerStack(3, 4)
  scanned = TransformerStack(3, 4, runtime=Runtime(scan=True))
  p = nn.unbox(unrolled.init(jax.random.key(0), x))["params"]
  last, picked = unrolled.apply({"params": p}, x, collect=(0, 2))
  last_s, picked_s = scanned.apply({"params": to_scanned({"blocks": p})["blocks"]}, x,
                                   collect=(0, 2))
  np.testing.assert_allclose(picked[1], last, atol=0)
  for a, b in zip(picked, picked_s):
    np.testing.assert_allclose(a, b, atol=1e-5)
  with pytest.raises(ValueError, match="outside"):
    unrolled.apply({"params": p}, x, collect=(3,))


def test_pangaea_neck_matches_torch():
  """neck_0 / neck_1: ConvTranspose2d x4 / x2; neck_2: 1x1 conv; neck_3: MaxPool2d(2), 1x1
  (square token grids, as the tiles and crops the model is given)."""
  rng = np.random.default_rng(5)
  feats = [rng.normal(size=(2, 6, 6, 10)).astype(np.float32) for _ in range(4)]
  neck = upernet.PangaeaNeck(8)
  p = nn.unbox(neck.init(jax.random.key(0), feats))["params"]
  ours = [np.asarray(o) for o in neck.apply({"params": p}, feats)]
  t = [torch.from_numpy(f).permute(0, 3, 1, 2) for f in feats]
  w = {k: {n: torch.from_numpy(np.asarray(a)) for n, a in v.items()} for k, v in p.items()}
  with torch.no_grad():
    ref = [torch.nn.functional.conv_transpose2d(t[0], w["neck_0"]["kernel"].permute(0, 3, 1, 2),
                                                w["neck_0"]["bias"], stride=4),
           torch.nn.functional.conv_transpose2d(t[1], w["neck_1"]["kernel"].permute(0, 3, 1, 2),
                                                w["neck_1"]["bias"], stride=2),
           torch.nn.functional.conv2d(t[2], w["neck_2"]["kernel"].T[:, :, None, None],
                                      w["neck_2"]["bias"]),
           torch.nn.functional.conv2d(torch.nn.functional.max_pool2d(t[3], 2),
                                      w["neck_3"]["kernel"].T[:, :, None, None],
                                      w["neck_3"]["bias"])]
  for i, (a, b) in enumerate(zip(ours, ref)):
    assert a.shape == (2, *b.shape[2:], 8), i
    np.testing.assert_allclose(a, b.permute(0, 2, 3, 1).numpy(), atol=1e-5, err_msg=f"neck_{i}")


def test_pangaea_head_reads_only_its_feature_layers():
  """With feature_layers (0, 0, 0, 0) the output ignores block 1 (unused, not even its
  parameters matter) and follows block 0; reading block 1 makes it follow block 1."""
  x = _cube()
  def out(layers, edit=None):
    m = get_model("seg_vit_tiny_patch8_32", head="pangaea", feature_layers=layers,
                  head_channels=32, head_groups=8)
    v = nn.unbox(m.init(jax.random.key(0), x))
    if edit:
      block = v["params"]["blocks"][edit]
      v["params"]["blocks"][edit] = jax.tree.map(lambda a: a + 0.5, block)
    return np.asarray(m.apply(v, x))
  base = out((0, 0, 0, 0))
  np.testing.assert_array_equal(out((0, 0, 0, 0), "layers_1"), base)
  assert np.abs(out((0, 0, 0, 0), "layers_0") - base).max() > 1e-3
  assert np.abs(out((0, 1, 1, 1), "layers_1") - out((0, 1, 1, 1))).max() > 1e-3
