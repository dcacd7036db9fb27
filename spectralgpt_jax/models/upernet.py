"""Dense heads: the official SpectralGPT feature pyramid and its UPerNet-like decoder (spec §5).

Layout NHWC throughout. 1x1 convolutions and the non-overlapping transposed convolutions are
matmuls over channels (`Dense`, through `ops`), so they run on whichever implementation the
program chose; only the 3x3 classifier is a real convolution. Parameter names mirror the
official keys where they exist (`conv0..3`, `decoder/PPMHead`, `Conv_fuse1..3`, `Conv_fuse1_..`,
`fuse_all`, `conv_x1`, `cls_seg`), with descriptive leaf modules: official `X.0` = `X/proj`,
`X.1` (GroupNorm) = `X/norm`, `conv{k}.3` (ConvTranspose) = `conv{k}/deconv`.
GroupNorm eps 1e-5 and bilinear resizing with align_corners=True, as torch's defaults there.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from spectralgpt_jax.models import ops as ops_lib
from spectralgpt_jax.models.dense_layer import Dense
from spectralgpt_jax.models.patch_embed import torch_default_bias_init
from spectralgpt_jax.models.runtime import DEFAULT, Runtime
from spectralgpt_jax.models.transformer import gelu
from spectralgpt_jax.sharding import axis_names as ax

GN_EPS = 1e-5


def resize_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in] float32 weights of 1-D linear interpolation with align_corners=True."""
  m = np.zeros((n_out, n_in), np.float32)
  if n_in == 1 or n_out == 1:
    m[:, 0] = 1.0
    return m
  pos = np.arange(n_out) * (n_in - 1) / (n_out - 1)
  lo = np.minimum(np.floor(pos).astype(int), n_in - 2)
  frac = (pos - lo).astype(np.float32)
  m[np.arange(n_out), lo] = 1.0 - frac
  m[np.arange(n_out), lo + 1] += frac
  return m


def resize_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """[B, h, w, C] -> [B, H, W, C], bilinear with align_corners=True (identity at equal size)."""
  h, w = x.shape[1:3]
  if (h, w) == tuple(size):
    return x
  mh = jnp.asarray(resize_matrix(h, size[0]), x.dtype)
  mw = jnp.asarray(resize_matrix(w, size[1]), x.dtype)
  return jnp.einsum("Hh,Ww,bhwc->bHWc", mh, mw, x)


def adaptive_pool(x: jax.Array, out: int, reduce: str = "max") -> jax.Array:
  """torch AdaptiveMax/AvgPool2d to out x out: bin i spans [floor(i L / out), ceil((i+1) L / out))."""
  h, w = x.shape[1:3]
  op = jnp.max if reduce == "max" else jnp.mean

  def bins(length):
    return [(i * length // out, -(-(i + 1) * length // out)) for i in range(out)]

  rows = [jnp.stack([op(x[:, y0:y1, x0:x1], axis=(1, 2)) for x0, x1 in bins(w)], axis=1)
          for y0, y1 in bins(h)]
  return jnp.stack(rows, axis=1)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """torch MaxPool2d(2): [B, h, w, C] -> [B, h // 2, w // 2, C] (a last odd row/column dropped)."""
  b, h, w, c = x.shape
  if h < 2 or w < 2:
    raise ValueError(f"a 2x2 max pool needs a map of at least 2x2, got {h}x{w}")
  h2, w2 = h // 2, w // 2
  return x[:, :2 * h2, :2 * w2].reshape(b, h2, 2, w2, 2, c).max(axis=(2, 4))


def conv1x1(features: int, name: str, runtime: Runtime, fan_in: int) -> Dense:
  """A 1x1 convolution as a Dense over channels (torch default init: kaiming-uniform a=sqrt 5)."""
  return Dense(features, dtype=runtime.dtype, param_dtype=runtime.param_dtype, ops=runtime.ops,
               name=name,
               kernel_init=nn.with_logical_partitioning(
                   nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"), (ax.EMBED, ax.MLP)),
               bias_init=nn.with_logical_partitioning(torch_default_bias_init(fan_in), (ax.MLP,)))


def group_norm(groups: int, name: str, param_dtype) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=groups, epsilon=GN_EPS, dtype=jnp.float32,
                      param_dtype=param_dtype, name=name,
                      scale_init=nn.with_logical_partitioning(nn.initializers.ones, (ax.MLP,)),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (ax.MLP,)))


class PixelDeconv(nn.Module):
  """ConvTranspose2d with kernel = stride = `scale` (no overlap): one matmul, then depth to
  space. Kernel [in, scale, scale, out] (official (in, out, k, k) transposed 0,2,3,1).
  [B, h, w, in] -> [B, h*scale, w*scale, out]."""

  features: int
  scale: int
  runtime: Runtime = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    s, o, rt = self.scale, self.features, self.runtime
    fan_in = o * s * s  # torch computes ConvTranspose fan-in from weight dim 1 x kernel
    kernel = self.param("kernel", nn.with_logical_partitioning(
        nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform", in_axis=(1, 2, 3),
                                         out_axis=0), (ax.EMBED, None, None, ax.MLP)),
        (c, s, s, o), rt.param_dtype)
    bias = self.param("bias", nn.with_logical_partitioning(torch_default_bias_init(fan_in),
                                                           (ax.MLP,)), (o,), rt.param_dtype)
    if ops_lib.is_low_precision(rt.dtype):
      y = ops_lib.lowp_matmul(x, kernel.reshape(c, s * s * o), jnp.dtype(rt.dtype))
    else:
      y = rt.ops.matmul(x.astype(jnp.float32), kernel.reshape(c, s * s * o).astype(jnp.float32))
    y = y.reshape(b, h, w, s, s, o).transpose(0, 1, 3, 2, 4, 5).reshape(b, h * s, w * s, o)
    return y + bias


class ConvNormAct(nn.Module):
  """1x1 conv (`proj`) -> GroupNorm (`norm`) -> GELU [-> x`scale` deconv] -> dropout."""

  features: int
  groups: int
  dropout: float = 0.0
  scale: int = 1
  deconv_features: int = 0
  runtime: Runtime = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    kw = dict(runtime=self.runtime)
    y = conv1x1(self.features, "proj", fan_in=x.shape[-1], **kw)(x)
    y = gelu(group_norm(self.groups, "norm", self.runtime.param_dtype)(y))
    if self.scale > 1:
      y = PixelDeconv(self.deconv_features or self.features, self.scale, name="deconv", **kw)(y)
    return nn.Dropout(self.dropout)(y, deterministic=not train)


class PyramidPooling(nn.Module):
  """PPM: adaptive pooling to each of `bins`, 1x1 conv each (`psp_modules_i`), upsampled and
  concatenated with the input, then `final` (conv, GN, GELU, dropout). -> [B, h, w, channels]."""

  channels: int
  groups: int
  dropout: float
  bins: Sequence[int] = (1, 2, 3, 6)
  pool: str = "max"
  runtime: Runtime = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    kw = dict(runtime=self.runtime)
    size = x.shape[1:3]
    outs = [x]
    for i, b in enumerate(self.bins):
      y = conv1x1(self.channels, f"psp_modules_{i}", fan_in=x.shape[-1], **kw)(
          adaptive_pool(x, b, self.pool))
      outs.append(resize_bilinear(y, size))
    return ConvNormAct(self.channels, self.groups, self.dropout, name="final", **kw)(
        jnp.concatenate(outs, -1), train=train)


class FPNHead(nn.Module):
  """The official FPNHEAD (UPerNet-like): PPM on the coarsest level, then a top-down path:
  x = conv_x1(up2(x)) + Conv_fuse{k}(lateral), smoothed by Conv_fuse{k}_; every level resized to
  the finest, concatenated and fused (`fuse_all`).

  Input: 4 levels fine to coarse [B, S, S, c0], [B, S/2, ..], [B, S/4, ..], [B, S/8, ..]
  (official channels 256/512/1024/2048). Output [B, S, S, channels].
  """

  channels: int = 256
  groups: int = 16
  dropout: float = 0.5
  pool: str = "max"
  runtime: Runtime = DEFAULT

  @nn.compact
  def __call__(self, levels: Sequence[jax.Array], *, train: bool = False) -> jax.Array:
    kw = dict(runtime=self.runtime)
    block = lambda name: ConvNormAct(self.channels, self.groups, self.dropout, name=name, **kw)
    x = PyramidPooling(self.channels, self.groups, self.dropout, pool=self.pool,
                       name="PPMHead", **kw)(levels[3], train=train)
    conv_x1 = conv1x1(self.channels, "conv_x1", fan_in=self.channels, **kw)
    outs = [x]
    for k, lateral in zip((1, 2, 3), (levels[2], levels[1], levels[0])):
      x = conv_x1(resize_bilinear(x, lateral.shape[1:3]))
      x = x + block(f"Conv_fuse{k}")(lateral, train=train)
      x = block(f"Conv_fuse{k}_")(x, train=train)
      outs.append(x)
    size = levels[0].shape[1:3]
    fused = jnp.concatenate([resize_bilinear(o, size) for o in outs], -1)
    return block("fuse_all")(fused, train=train)


class OfficialPyramid(nn.Module):
  """conv0..conv3: one feature map [B, h, w, D] -> 4 levels at x8, x4, x2, x1 with `channels`
  (official 256, 512, 1024, 2048; 1x1 widths 512, 512, 1024, 2048), GN(groups), GELU, dropout."""

  channels: Sequence[int] = (256, 512, 1024, 2048)
  groups: int = 32
  dropout: float = 0.5
  runtime: Runtime = DEFAULT

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool = False) -> list[jax.Array]:
    kw = dict(runtime=self.runtime)
    c0, c1, c2, c3 = self.channels
    widths = (max(c0, c1), c1, c2, c3)  # official conv0's 1x1 is 512 wide, its deconv -> 256
    out = []
    for i, (scale, width, c) in enumerate(zip((8, 4, 2, 1), widths, self.channels)):
      out.append(ConvNormAct(width, self.groups, self.dropout, scale=scale, deconv_features=c,
                             name=f"conv{i}", **kw)(x, train=train))
    return out


class PangaeaNeck(nn.Module):
  """4 feature maps [B, h, w, C_i] -> a 4-level pyramid of `channels` at x4, x2, x1, /2:
  transposed convs (`neck_0`, `neck_1`), 1x1 conv (`neck_2`), 2x2 max pool + 1x1 (`neck_3`)."""

  channels: int = 512
  runtime: Runtime = DEFAULT

  @nn.compact
  def __call__(self, feats: Sequence[jax.Array]) -> list[jax.Array]:
    if len(feats) != 4:
      raise ValueError(f"the PANGAEA neck takes 4 feature maps (feature_layers), got {len(feats)}")
    c = self.channels
    kw = dict(runtime=self.runtime)
    return [PixelDeconv(c, 4, name="neck_0", **kw)(feats[0]),
            PixelDeconv(c, 2, name="neck_1", **kw)(feats[1]),
            conv1x1(c, "neck_2", fan_in=feats[2].shape[-1], **kw)(feats[2]),
            conv1x1(c, "neck_3", fan_in=feats[3].shape[-1], **kw)(max_pool_2x2(feats[3]))]


class Classifier(nn.Module):
  """`cls_seg`: 3x3 convolution (padding 1) to `num_classes`. [B, H, W, C] -> [B, H, W, K]."""

  num_classes: int
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1] * 9
    return nn.Conv(self.num_classes, (3, 3), padding=1, dtype=jnp.float32,
                   param_dtype=self.param_dtype, name="conv",
                   kernel_init=nn.with_logical_partitioning(
                       nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                       (None, None, ax.EMBED, ax.CLASSES)),
                   bias_init=nn.with_logical_partitioning(torch_default_bias_init(fan_in),
                                                          (ax.CLASSES,)))(x.astype(jnp.float32))
