"""from_pretrained on every export we write and on official-layout .pth files: strict loading,
the manifest checked, and outputs equal to our JAX inference within 1e-5 (float32) on the real
BigEarthNet patches."""

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import export_helpers as H
import parity
from export_helpers import TINY_MAE, TINY_VIT
from spectralgpt_jax import checkpoints
from spectralgpt_jax.export import to_torch
from spectralgpt_jax.inference import load
from spectralgpt_jax.models.transformer import Block
from spectralgpt_jax.torch import (ManifestError, MaskedAutoencoderViT, VisionTransformer,
                                   create_model, from_pretrained)
from spectralgpt_jax.torch.pretrained import from_shapes

TOL = 1e-5


def _jax_block_outputs(m, x: np.ndarray, layers) -> list[np.ndarray]:
  """Raw outputs of encoder blocks `layers` of a loaded JAX model (no masking)."""
  net, n = m.model, m.spec.num_tokens
  noise = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32), (x.shape[0], n))
  is_block = lambda mdl, method: (method == "__call__" and isinstance(mdl, Block)
                                  and mdl.parent is not None and mdl.parent.name == "blocks")
  kw = dict(capture_intermediates=is_block, mutable=["intermediates"])
  if net.spec.kind == "mae":
    _, state = net.apply({"params": m.params}, x, noise, 0.0, method="encode", **kw)
  else:
    _, state = net.apply({"params": m.params}, x, method="features", **kw)
  blocks = state["intermediates"]["blocks"]
  return [np.asarray(blocks[f"layers_{i}"]["__call__"][0]) for i in layers]


@pytest.fixture(params=["pth", "safetensors"])
def exported(request, exported_pth, exported_safetensors):
  return {"pth": exported_pth, "safetensors": exported_safetensors}[request.param]


def test_export_matches_jax_on_real_patches(exported, cubes32):
  _, x = cubes32
  model, ours = from_pretrained(exported), load(exported)
  assert isinstance(model, MaskedAutoencoderViT) and not model.training
  assert model.bands == ours.bands and model.normalization == ours.normalization
  xt = torch.from_numpy(x)
  with torch.no_grad():
    assert parity.rel_err(model.embed(xt), ours.embed(x, normalize=False)) < TOL
    assert parity.rel_err(model.encode(xt), ours.features(x, normalize=False)) < TOL
    feats = model.forward_features(xt, layers=[0, -1])
    for got, want in zip(feats, _jax_block_outputs(ours, x, [0, 1])):
      assert got.shape == (6, 64, 64) and parity.rel_err(got, want) < TOL
    noise = np.random.default_rng(0).uniform(size=(6, 64)).astype(np.float32)
    loss, pred, mask = model(xt, mask_ratio=0.9, noise=torch.from_numpy(noise))
  out = ours.reconstruct(x, mask_ratio=0.9, noise=noise, normalize=False)
  np.testing.assert_array_equal(mask.numpy(), out["mask"])
  assert parity.rel_err(pred, out["pred"]) < TOL
  np.testing.assert_allclose(loss.item(), out["loss"], rtol=TOL)


def test_dated_export_loads_with_the_dates_folded(tmp_path):
  kwargs = {"num_bands": 6, "num_dates": 2, "img_size": 16}
  params = H.random_params(H.build(TINY_MAE, **kwargs), seed=3)
  meta = {"model": {"name": TINY_MAE, **kwargs}, "bands": H.BANDS[1:7], "normalization": None}
  checkpoints.write_checkpoint(tmp_path / "run" / "checkpoints", params, meta, step=1)
  for suffix in ("safetensors", "pth"):
    path = to_torch.export_checkpoint(tmp_path / "run", tmp_path / f"w.{suffix}").weights
    model = from_pretrained(path)
    assert model.num_frames == 12 and len(model.bands) == 6
    x = np.random.default_rng(0).uniform(size=(3, 2, 6, 16, 16)).astype(np.float32)
    with torch.no_grad():
      got = model.embed(torch.from_numpy(x))
    assert parity.rel_err(got, load(path).embed(x, normalize=False)) < TOL


def test_finetune_export_keeps_the_pooling(cubes32, tmp_path):
  _, x = cubes32
  record = {"name": TINY_VIT, "num_classes": 7, "pos_embed": "official_zeros",
            "pool": "official_skip_first"}
  vit = H.build(TINY_VIT, num_classes=7, pos_embed="official_zeros", pool="official_skip_first")
  H.write_training_checkpoint(tmp_path / "run", H.random_params(vit, seed=1), model=record)
  path = to_torch.export_checkpoint(tmp_path / "run", tmp_path / "ft.safetensors",
                                    target="finetune").weights
  model = from_pretrained(path)
  assert isinstance(model, VisionTransformer) and model.pool_mode == "official_skip_first"
  ours = load(path)
  logits = jax.jit(lambda p: ours.model.apply({"params": p}, x))(ours.params)
  with torch.no_grad():
    assert parity.rel_err(model(torch.from_numpy(x)), logits) < TOL
    assert parity.rel_err(model.embed(torch.from_numpy(x)), ours.embed(x, normalize=False)) < TOL


def test_official_pth_round_trip_infers_the_variant(tmp_path):
  torch.manual_seed(0)
  src = create_model(TINY_MAE)
  for p in src.parameters():
    p.data.normal_(0, 0.05)
  path = tmp_path / "official.pth"
  torch.save({"model": src.state_dict(), "epoch": 199,
              "args": argparse.Namespace(model=TINY_MAE, mask_ratio=0.9)}, path)
  model = from_pretrained(path)
  assert model.manifest is None and model.normalization["mode"] == "minmax"
  assert len(model.bands) == 12 and model.input_size == src.input_size
  for k, v in src.state_dict().items():
    assert torch.equal(model.state_dict()[k], v), k
  torch.save({"model": model.state_dict()}, tmp_path / "again.pth")     # and back out
  again = from_pretrained(tmp_path / "again.pth")
  x = torch.rand(2, 12, 32, 32)
  with torch.no_grad():
    torch.testing.assert_close(again.embed(x), src.eval().embed(x), rtol=0, atol=0)


def test_official_classifier_pth_gets_the_official_pooling(tmp_path):
  src = create_model(TINY_VIT, num_classes=19, pool="official_skip_first").eval()
  torch.save({"model": src.state_dict()}, tmp_path / "ft.pth")
  model = from_pretrained(tmp_path / "ft.pth")
  assert isinstance(model, VisionTransformer) and model.pool_mode == "official_skip_first"
  assert model.head.out_features == 19
  x = torch.rand(2, 12, 32, 32)
  with torch.no_grad():
    torch.testing.assert_close(model(x), src(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["mae_vit_base_patch8_96", "mae_vit_base_patch8_128",
                                  "vit_base_patch8_128", "mae_vit_huge_patch8_128"])
def test_shapes_give_the_official_architecture(name):
  with torch.device("meta"):
    ref = create_model(name)
  kind, kw = from_shapes(ref.state_dict(), name)
  with torch.device("meta"):
    got = {"mae": MaskedAutoencoderViT, "vit": VisionTransformer}[kind](**kw)
  assert [(k, v.shape) for k, v in got.state_dict().items()] == \
      [(k, v.shape) for k, v in ref.state_dict().items()]
  assert got.blocks[0].attn.num_heads == ref.blocks[0].attn.num_heads


# ------------------------------------------------------------------------------ errors

@pytest.mark.parametrize("field,value", [("image_size", 64), ("bands", ["B02", "B03"]),
                                         ("variant", "vit_tiny_patch8_32"),
                                         ("normalization", {"mode": "percentile"})])
def test_inconsistent_manifest_names_file_and_field(exported_pth, tmp_path, field, value):
  path = tmp_path / "w.pth"
  path.write_bytes(exported_pth.read_bytes())
  man = json.loads((exported_pth.parent / (exported_pth.name + ".json")).read_text())
  man[field] = value
  (tmp_path / "w.pth.json").write_text(json.dumps(man))
  with pytest.raises(ManifestError, match=rf"{path}.json: manifest field '{field}'"):
    from_pretrained(path)


def test_bfloat16_export_loads_as_float32(trained_mae, tmp_path):
  path = to_torch.export_checkpoint(trained_mae[0], tmp_path / "bf16.safetensors",
                                    dtype="bfloat16").weights
  model = from_pretrained(path)
  want = trained_mae[1]["blocks"]["layers_1"]["mlp"]["fc1"]["kernel"].T
  got = model.blocks[1].mlp.fc1.weight
  assert got.dtype == torch.float32
  np.testing.assert_allclose(got.detach().numpy(), want, rtol=2 ** -8)
  with pytest.raises(ManifestError, match="'variant'"):
    from_pretrained(path, model="mae_vit_base_patch8_128")


def test_strict_loading_lists_missing_and_unexpected_keys(exported_pth, tmp_path):
  state = dict(torch.load(exported_pth, weights_only=True)["model"])
  del state["norm.weight"]
  state["blocks.0.attn.qkv.weight"] = torch.zeros(3)
  state["decoder_pred.bias"] = torch.zeros(5)
  path = tmp_path / "bad.pth"
  torch.save({"model": state}, path)
  with pytest.raises(ValueError) as e:
    from_pretrained(path)
  msg = str(e.value)
  assert str(path) in msg and "missing keys ['norm.weight']" in msg
  assert "unexpected keys ['blocks.0.attn.qkv.weight']" in msg
  assert "decoder_pred.bias: (5,) != expected (192,)" in msg
