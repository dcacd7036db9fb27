"""Import: official-layout .pth (made by the PyTorch twin, random weights) -> orbax checkpoint.

Also the round trip JAX -> PyTorch -> JAX, which must be bit-exact in float32.
"""

import argparse

import jax
import numpy as np
import pytest
import torch

import export_helpers as H
import parity
from export_helpers import TINY_MAE, TINY_VIT
from spectralgpt_jax.__main__ import main as cli
from spectralgpt_jax import checkpoints
from spectralgpt_jax.export import from_torch, param_mapping, to_torch
from spectralgpt_jax.models import get_model, posembed
from spectralgpt_jax.models.transformer import to_unrolled
from spectralgpt_jax.torch import create_model

TOL = 1e-5


def _twin_pth(path, name: str, *, wrapped: bool = True, seed: int = 0, **kw):
  """Saves a twin with random weights the way the official training script does."""
  torch.manual_seed(seed)
  twin = create_model(name, **kw)
  with torch.no_grad():
    for p in twin.parameters():
      p.normal_(0.0, 0.05)
  sd = twin.state_dict()
  args = argparse.Namespace(model=name, input_size=32, mask_ratio=0.9, blr=1e-4)
  obj = {"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "epoch": 99,
         "scaler": {"scale": 65536.0}, "args": args}
  torch.save(obj if wrapped else sd, path)
  return twin.eval()


def _mae_outputs(model, params, x, seed=0):
  noise = np.random.default_rng(seed).uniform(size=(x.shape[0], model.spec.num_tokens))
  noise = noise.astype(np.float32)
  pred, _ = jax.jit(lambda p: model.apply({"params": p}, x, mask_ratio=0.75, noise=noise))(params)
  return np.asarray(pred), noise


@pytest.fixture(scope="module")
def official_pth(tmp_path_factory):
  path = tmp_path_factory.mktemp("official") / "SpectralGPT+.pth"
  return path, _twin_pth(path, TINY_MAE)


def test_import_official_pth_matches_twin(official_pth, cubes32, tmp_path, capsys):
  path, twin = official_pth
  assert cli(["import", "--weights", str(path), "--model", TINY_MAE, "--workdir",
              str(tmp_path / "ck")]) == 0
  assert "wrote" in capsys.readouterr().out
  ck = checkpoints.read_checkpoint(tmp_path / "ck")
  assert ck.step == 0 and ck.meta["model"] == {"name": TINY_MAE}
  assert ck.meta["config"]["source_args"]["model"] == TINY_MAE
  assert ck.meta["config"]["source_epoch"] == 99
  assert ck.meta["bands"] == H.BANDS and ck.meta["normalization"]["mode"] == "minmax"
  _, x = cubes32
  pred, noise = _mae_outputs(get_model(TINY_MAE), ck.params, x)
  with torch.no_grad():
    _, pred_t, _ = twin(torch.from_numpy(x), mask_ratio=0.75, noise=torch.from_numpy(noise))
  assert parity.rel_err(pred, pred_t) < TOL


def test_bare_state_dict_is_recognised_without_model_name(official_pth, tmp_path):
  path, twin = official_pth
  bare = tmp_path / "bare.pth"
  torch.save(twin.state_dict(), bare)
  conv, meta = from_torch.load_weights(bare)
  assert conv.record == {"name": TINY_MAE} and "source_args" not in meta["config"]
  want = param_mapping.torch_to_flax({k: v.numpy() for k, v in twin.state_dict().items()})
  jax.tree.map(np.testing.assert_array_equal, conv.params, want)


def test_import_at_another_image_size_resizes_positions(official_pth, example_dir, tmp_path):
  path, twin = official_pth
  step_dir, conv, _ = from_torch.import_file(path, tmp_path / "ck", model=TINY_MAE,
                                             image_size=48)
  assert any("16 -> 36" in n for n in conv.notes)
  sd = twin.state_dict()
  for key in ("pos_embed_spatial", "decoder_pos_embed_spatial"):
    want = posembed.resize_spatial(sd[key].numpy(), 6)
    np.testing.assert_allclose(conv.params[key], want, rtol=0, atol=1e-7)
  # Our 48 px model equals a 48 px twin holding the same (resized) weights.
  model = get_model(TINY_MAE, img_size=48)
  params = checkpoints.read_checkpoint(step_dir).params
  twin48 = parity.twin_with_params(TINY_MAE, params, model.spec, img_size=48)
  _, x = H.real_cubes(example_dir, 48)
  pred, noise = _mae_outputs(model, params, x[:2])
  with torch.no_grad():
    _, pred_t, _ = twin48(torch.from_numpy(x[:2]), mask_ratio=0.75,
                          noise=torch.from_numpy(noise))
  assert parity.rel_err(pred, pred_t) < TOL


def test_import_into_vit_drops_decoder_and_initialises_head(official_pth):
  path, twin = official_pth
  conv, meta = from_torch.load_weights(path, model=TINY_VIT, num_classes=5)
  p = conv.params
  assert not any(k.startswith(("decoder", "mask_token")) for k in p)
  assert p["head"]["kernel"].shape == (64, 5) and np.abs(p["head"]["kernel"]).max() <= 4e-5
  np.testing.assert_array_equal(p["blocks"]["layers_1"]["attn"]["q"]["kernel"],
                                twin.blocks[1].attn.q.weight.detach().numpy().T)
  np.testing.assert_array_equal(p["pos_embed_spatial"], twin.pos_embed_spatial.detach().numpy())
  assert meta["model"] == {"name": TINY_VIT, "num_classes": 5, "pos_embed": "separable",
                           "pool": "mean"}
  assert any("dropped" in n for n in conv.notes)


def test_import_finetune_layout_reproduces_official_classifier(cubes32, tmp_path):
  path = tmp_path / "ft.pth"
  twin = _twin_pth(path, TINY_VIT, num_classes=19, pool="official_skip_first")
  conv, meta = from_torch.load_weights(path)
  assert meta["model"] == {"name": TINY_VIT, "num_classes": 19, "pos_embed": "official_zeros",
                           "pool": "official_skip_first"}
  _, x = cubes32
  model = get_model(TINY_VIT, **{k: v for k, v in meta["model"].items() if k != "name"})
  logits = jax.jit(lambda p: model.apply({"params": p}, x))(conv.params)
  with torch.no_grad():
    assert parity.rel_err(logits, twin(torch.from_numpy(x))) < TOL


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_round_trip_jax_torch_jax_is_bit_exact(trained_mae, tmp_path, suffix):
  workdir, params = trained_mae
  res = to_torch.export_checkpoint(workdir, tmp_path / f"w{suffix}")
  step_dir, _, meta = from_torch.import_file(res.weights, tmp_path / "ck", scan=True)
  back = checkpoints.read_checkpoint(step_dir)
  assert "layers" in back.params["blocks"]  # stored scanned, as asked
  assert meta["bands"] == H.BANDS and meta["normalization"] == H.NORMALIZATION
  jax.tree.map(np.testing.assert_array_equal, to_unrolled(back.params), params)


def test_vit_round_trip_is_bit_exact(tmp_path):
  model = get_model(TINY_VIT, pos_embed="official_zeros", pool="official_skip_first")
  params = H.random_params(model, seed=2)
  state, spec, _ = to_torch.export_params(params, model.spec, target="finetune")
  conv = from_torch.convert_state_dict(state, TINY_VIT)
  jax.tree.map(np.testing.assert_array_equal, conv.params, params)


# ------------------------------------------------------------------------------ errors


def test_wrong_variant_lists_missing_and_unexpected_keys(official_pth, tmp_path, capsys):
  path, _ = official_pth
  rc = cli(["import", "--weights", str(path), "--model", "mae_vit_base_patch8_128", "--workdir",
            str(tmp_path / "ck")])
  err = capsys.readouterr().err
  assert rc == 1 and "missing keys" in err and "blocks.11.norm1.weight" in err
  assert "patch_embed.proj.weight: (64, 1, 3, 8, 8) != expected (768, 1, 3, 8, 8)" in err
  assert not (tmp_path / "ck").exists()


def test_finetune_layout_cannot_become_an_mae(tmp_path):
  path = tmp_path / "ft.pth"
  _twin_pth(path, TINY_VIT)
  with pytest.raises(from_torch.WeightsImportError, match="decoder_pred.weight"):
    from_torch.load_weights(path, model=TINY_MAE)


def test_existing_step_needs_force(official_pth, tmp_path):
  path, _ = official_pth
  from_torch.import_file(path, tmp_path / "ck", model=TINY_MAE)
  with pytest.raises(FileExistsError, match="--overwrite"):
    from_torch.import_file(path, tmp_path / "ck", model=TINY_MAE)
  from_torch.import_file(path, tmp_path / "ck", model=TINY_MAE, force=True)


class _Payload:
  def __reduce__(self):
    return (print, ("code ran",))


def test_unsafe_pth_is_refused_by_the_cli(tmp_path, capsys):
  torch.save({"model": {"pos_embed": torch.zeros(1)}, "hook": _Payload()}, tmp_path / "x.pth")
  rc = cli(["import", "--weights", str(tmp_path / "x.pth"), "--workdir", str(tmp_path / "ck")])
  cap = capsys.readouterr()
  assert rc == 1 and "refused" in cap.err and "builtins.print" in cap.err
  assert "code ran" not in cap.out


def test_import_into_a_named_variant_keeps_the_manifests_image_size(tmp_path):
  """The reported bug: an export of a 64 px tiny MAE imported into vit_tiny_patch8_32 shrank
  the position table from 64 to 16 positions (the variant's 32 px default)."""
  model = H.build(TINY_MAE, img_size=64)
  params = jax.tree.map(np.asarray, H.random_params(model, seed=4))
  H.write_training_checkpoint(tmp_path / "run", params, model={"name": TINY_MAE, "img_size": 64})
  weights = to_torch.export_checkpoint(tmp_path / "run", tmp_path / "tiny64.pth").weights
  conv, meta = from_torch.load_weights(weights, model=TINY_VIT, num_classes=3)
  assert conv.params["pos_embed_spatial"].shape == (1, 64, 64)
  np.testing.assert_array_equal(conv.params["pos_embed_spatial"], params["pos_embed_spatial"])
  assert meta["model"]["img_size"] == 64
  assert any(n.startswith("img_size 64 from the manifest") for n in conv.notes), conv.notes
  # An explicit size still resizes.
  conv, _ = from_torch.load_weights(weights, model=TINY_VIT, image_size=32, num_classes=3)
  assert conv.params["pos_embed_spatial"].shape == (1, 16, 64)
  assert not any("from the manifest" in n for n in conv.notes)
