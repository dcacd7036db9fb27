"""Stage-2 initialisation: params only, position tables re-initialised or resized."""

import numpy as np
import pytest

from spectralgpt_jax.models import posembed
from spectralgpt_jax.train import init_from


def _params(side, groups=4, width=8, scanned=True):
  rng = np.random.default_rng(side)
  block = {"attn": {"q": {"kernel": rng.normal(size=(width, width)).astype(np.float32)}}}
  blocks = ({"layers": {"attn": {"q": {"kernel": np.stack([block["attn"]["q"]["kernel"]] * 2)}}}}
            if scanned else {"layers_0": block, "layers_1": block})
  return {"pos_embed_spatial": rng.normal(size=(1, side * side, width)).astype(np.float32),
          "pos_embed_temporal": rng.normal(size=(1, groups, width)).astype(np.float32),
          "mask_token": rng.normal(size=(1, 1, width)).astype(np.float32), "blocks": blocks}


def test_stage2_reinit_keeps_fresh_tables_and_copies_the_rest():
  source, fresh = _params(3, scanned=False), _params(4)  # 96 -> 128 px is 12x12 -> 16x16
  out, report = init_from.merge(fresh, source, "reinit")
  np.testing.assert_array_equal(out["pos_embed_spatial"], fresh["pos_embed_spatial"])
  np.testing.assert_array_equal(out["pos_embed_temporal"], source["pos_embed_temporal"])
  np.testing.assert_array_equal(out["mask_token"], source["mask_token"])
  # An unrolled source lands in a scanned target.
  np.testing.assert_array_equal(out["blocks"]["layers"]["attn"]["q"]["kernel"][1],
                                source["blocks"]["layers_1"]["attn"]["q"]["kernel"])
  assert any("pos_embed_spatial" in line and "fresh init" in line for line in report)


def test_stage2_resize_interpolates_the_spatial_table():
  source, fresh = _params(3), _params(4, groups=6)
  out, report = init_from.merge(fresh, source, "resize")
  want = posembed.resize_spatial(source["pos_embed_spatial"], 4)
  np.testing.assert_allclose(out["pos_embed_spatial"], want, rtol=1e-6)
  assert out["pos_embed_temporal"].shape == (1, 6, 8)
  assert sum("resized" in line for line in report) == 2


def test_other_shape_mismatches_are_errors():
  source, fresh = _params(3, width=8), _params(3, width=16)
  with pytest.raises(ValueError, match="blocks/layers/attn/q/kernel"):
    init_from.merge(fresh, source)
  with pytest.raises(ValueError, match="pos_embed must be one of"):
    init_from.merge(fresh, fresh, "interpolate")
