"""The PyTorch segmentation / change-detection models (spectralgpt_jax.torch.DenseModel) loaded
from our dense exports give the JAX models' outputs within 1e-5 (float32) on real tiles: OSCD
(rennes, both dates) and the Sen1Floods11 chip, normalized as dense_eval feeds them."""

import numpy as np
import pytest

import dense_helpers as D
from spectralgpt_jax.export import to_torch
from spectralgpt_jax.inference import load

torch = pytest.importorskip("torch")
from spectralgpt_jax.torch import DenseModel, from_pretrained  # noqa: E402

SIZE = 64   # the tiny dense configs' input size


def _tiles(images, n: int = 2) -> list[np.ndarray]:
  """The first `n` SIZE x SIZE tiles along the diagonal of each date of the first image."""
  img = images[0]
  dates = [img["cube"]] + ([img["cube2"]] if img["cube2"] is not None else [])
  return [np.stack([d[:, i * SIZE:(i + 1) * SIZE, i * SIZE:(i + 1) * SIZE] for i in range(n)])
          .astype(np.float32) for d in dates]


def _images(module, name: str, root, **fields):
  from data_pipelines import dense
  config = module.get_config("tiny")
  test = getattr(config.evals, name).test_data
  test.paths = str(root)
  for k, v in fields.items():
    setattr(test.oscd, k, v)
  return dense.load_dense_images(test)


@pytest.fixture(scope="module")
def oscd_tiles(oscd_root):
  from configs.eval import oscd
  return _tiles(_images(oscd, "oscd", oscd_root, cities="rennes"))


@pytest.fixture(scope="module")
def flood_tiles(flood_root):
  from configs.eval import sen1floods11
  return _tiles(_images(sen1floods11, "flood", flood_root))


def _parity(tmp_path, name, tiles, fmt="safetensors", **model_kwargs):
  run, _, _ = D.write_dense_run(tmp_path, name, img_size=SIZE, **model_kwargs)
  weights = to_torch.export_checkpoint(run, tmp_path / f"w.{fmt}").weights
  ours = load(run).dense_logits(*tiles)                       # [B, K, H, W]
  net = from_pretrained(weights)
  assert isinstance(net, DenseModel) and net.bands == tuple(D.H.BANDS)
  with torch.no_grad():
    theirs = net(*[torch.from_numpy(t) for t in tiles]).numpy()
  assert ours.shape == theirs.shape == (tiles[0].shape[0], 2, SIZE, SIZE)
  assert np.abs(ours).max() > 0.1          # not a degenerate output
  np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
  return ours


def test_change_detector_on_real_oscd(tmp_path, oscd_tiles):
  logp = _parity(tmp_path, D.TINY_CD, oscd_tiles)
  np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=1e-5)   # LogSoftmax output


@pytest.mark.slow
def test_segmenter_on_real_sen1floods11(tmp_path, flood_tiles):
  _parity(tmp_path, D.TINY_SEG, flood_tiles, fmt="pth")


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", [
    (D.TINY_SEG, dict(head="pangaea", feature_layers=(0, 1, 1, 1))),
    (D.TINY_CD, dict(head="pangaea", feature_layers=(0, 1, 1, 1))),
    (D.TINY_CD, dict(fusion="concat")),
])
def test_other_heads_on_real_data(tmp_path, oscd_tiles, flood_tiles, name, kwargs):
  _parity(tmp_path, name, oscd_tiles if name == D.TINY_CD else flood_tiles, **kwargs)
