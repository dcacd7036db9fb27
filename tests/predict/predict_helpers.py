"""Tiny models with random weights and synthetic scenes written as GeoTIFFs (for tests/predict
and bench/predict_bench.py)."""

from __future__ import annotations

import pathlib

import numpy as np

from data_pipelines.schema import SPECTRALGPT_BANDS

BANDS = list(SPECTRALGPT_BANDS)
CRS = "EPSG:32631"
ORIGIN = (500000.0, 4800000.0)


def random_model(name: str, *, image_size: int = 32, seed: int = 0, std: float = 0.05,
                 normalization=None, **data):
  """inference.SpectralGPT of variant `name` with random normal params (no compile)."""
  import jax  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax import models  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.inference.model import SpectralGPT  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.kernels import select  # pylint: disable=g-import-not-at-top
  from spectralgpt_jax.models.shapes import param_shapes  # pylint: disable=g-import-not-at-top
  record = {"name": name}
  spec = models.build_model(record, runtime=False).spec
  net = models.build_model(record, runtime=False,
                           ops=select.ops_for(jax.local_devices()[:1], max_tokens=spec.num_tokens))
  rng = np.random.default_rng(seed)
  params = jax.tree.map(lambda a: rng.standard_normal(a.shape, np.float32) * std,
                        param_shapes(net))
  norm = normalization or {"mode": "zscore", "mean": [1500.0] * 12, "std": [500.0] * 12,
                           "units": "DN", "bands": BANDS}
  meta = {"model": record, "bands": BANDS, "normalization": norm,
          "config": {"data": {"image_size": image_size, "minmax_scope": "image", **data}}}
  return SpectralGPT(net, params, meta, f"random {name}")


def write_scene(path: pathlib.Path, cube: np.ndarray, *, nodata=None, pixel: float = 10.0,
                bands=BANDS, tiled: bool = True, origin=ORIGIN, crs: str = CRS) -> pathlib.Path:
  """[C, H, W] -> a GeoTIFF with band descriptions, CRS, a north-up transform and nodata."""
  import rasterio  # pylint: disable=g-import-not-at-top
  c, h, w = cube.shape
  profile = dict(driver="GTiff", height=h, width=w, count=c, dtype=cube.dtype.name, crs=crs,
                 transform=rasterio.Affine(pixel, 0, origin[0], 0, -pixel, origin[1]),
                 nodata=nodata, compress="deflate")
  if tiled:
    profile.update(tiled=True, blockxsize=256, blockysize=256)
  with rasterio.open(path, "w", **profile) as dst:
    dst.write(cube)
    for i, b in enumerate(bands):
      dst.set_band_description(i + 1, b)
  return path


def synthetic_cube(h: int, w: int, c: int = 12, seed: int = 0) -> np.ndarray:
  """uint16 DN [c, h, w]: smooth fields plus noise (the windows differ)."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  base = 1500 + 600 * np.sin(yy / 7.0 + np.arange(c)[:, None, None]) * np.cos(xx / 11.0)
  return (base + rng.normal(0, 150, (c, h, w))).clip(1, 10000).astype(np.uint16)
