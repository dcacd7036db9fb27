"""Export: orbax checkpoint -> official-layout .pth/.safetensors + manifest.

Exported files load with strict=True into the PyTorch twin of the official modules, and the
twin then reproduces our outputs within 1e-5 on the real BigEarthNet patches.
"""

import json

import jax
import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import export_helpers as H
import parity
from export_helpers import TINY_MAE, TINY_VIT
from spectralgpt_jax.__main__ import main as cli
from spectralgpt_jax.export import to_torch
from spectralgpt_jax.models import get_model
from spectralgpt_jax.torch import MaskedAutoencoderViT, create_model

TOL = 1e-5


def _load_twin(name: str, path, **kw) -> torch.nn.Module:
  twin = create_model(name, **kw)
  sd = (load_file(str(path)) if str(path).endswith(".safetensors")
        else torch.load(path, map_location="cpu", weights_only=True)["model"])
  twin.load_state_dict(sd, strict=True)
  return twin.eval()


@pytest.mark.parametrize("which", ["fresh", "trained"])
def test_tiny_mae_export_loads_strict_and_matches_twin(which, fresh_mae, trained_mae, cubes32,
                                                       tmp_path):
  workdir, params = {"fresh": fresh_mae, "trained": trained_mae}[which]
  res = to_torch.export_checkpoint(workdir, tmp_path / "w.pth")
  twin = _load_twin(TINY_MAE, res.weights)
  _, x = cubes32
  model = get_model(TINY_MAE)
  noise = np.random.default_rng(0).uniform(size=(x.shape[0], model.spec.num_tokens))
  noise = noise.astype(np.float32)
  pred, aux = jax.jit(lambda p: model.apply({"params": p}, x, mask_ratio=0.9, noise=noise))(params)
  with torch.no_grad():
    _, pred_t, mask_t = twin(torch.from_numpy(x), mask_ratio=0.9, noise=torch.from_numpy(noise))
  np.testing.assert_array_equal(np.asarray(aux["mask"]), mask_t.numpy())
  assert parity.rel_err(pred, pred_t) < TOL


@pytest.mark.parametrize("pos_embed", ["official_zeros", "separable"])
def test_vit_finetune_export_with_official_pooling_matches_twin(pos_embed, cubes32, tmp_path):
  _, x = cubes32
  model = get_model(TINY_VIT, pos_embed=pos_embed, pool="official_skip_first", num_classes=7)
  params = H.random_params(model, seed=1)
  record = {"name": TINY_VIT, "num_classes": 7, "pos_embed": pos_embed,
            "pool": "official_skip_first"}
  H.write_training_checkpoint(tmp_path / "run", H.shard(params), model=record)
  res = to_torch.export_checkpoint(tmp_path / "run", tmp_path / "ft.safetensors",
                                   target="finetune")
  twin = _load_twin(TINY_VIT, res.weights, num_classes=7, pool="official_skip_first")
  logits = jax.jit(lambda p: model.apply({"params": p}, x))(params)
  tokens = jax.jit(lambda p: model.apply({"params": p}, x, method="features"))(params)
  with torch.no_grad():
    assert parity.rel_err(tokens, twin.encode(torch.from_numpy(x))) < TOL
    assert parity.rel_err(logits, twin(torch.from_numpy(x))) < TOL
  assert res.data["model"]["pos_embed"] == "official_zeros"
  assert res.data["model"]["pool"] == "official_skip_first"


def test_mae_to_finetune_export_has_summed_positions_and_zero_head(trained_mae, tmp_path):
  workdir, params = trained_mae
  res = to_torch.export_checkpoint(workdir, tmp_path / "ft.pth", target="finetune",
                                   num_classes=19)
  twin = _load_twin(TINY_VIT, res.weights, num_classes=19)
  sd = twin.state_dict()
  pos = (params["pos_embed_temporal"][0][:, None] + params["pos_embed_spatial"][0][None])
  np.testing.assert_array_equal(sd["pos_embed"].numpy()[0], pos.reshape(-1, pos.shape[-1]))
  assert not sd["head.weight"].any() and sd["head.weight"].shape == (19, 64)
  assert res.data["torch_module"] == "models_vit_tensor.VisionTransformer"
  assert res.data["model"] == {"name": TINY_VIT, "num_classes": 19,
                               "pos_embed": "official_zeros", "pool": "official_skip_first"}
  assert any("zeros" in n for n in res.data["notes"])


def test_bfloat16_export(trained_mae, tmp_path):
  workdir, params = trained_mae
  res = to_torch.export_checkpoint(workdir, tmp_path / "bf16.safetensors", dtype="bfloat16")
  sd = load_file(str(res.weights))
  assert all(t.dtype == torch.bfloat16 for t in sd.values())
  want = params["blocks"]["layers_1"]["mlp"]["fc1"]["kernel"].T.astype(ml_dtypes.bfloat16)
  got = sd["blocks.1.mlp.fc1.weight"].view(torch.int16).numpy().view(ml_dtypes.bfloat16)
  np.testing.assert_array_equal(got, want)
  assert res.data["weights"]["dtype"] == "bfloat16"


def test_manifest_contents(trained_mae, tmp_path):
  res = to_torch.export_checkpoint(trained_mae[0], tmp_path / "m.pth")
  m = json.loads((tmp_path / "m.pth.json").read_text())
  assert m == res.data
  assert m["format"] == "spectralgpt-jax-weights" and m["target"] == "pretrain"
  assert m["torch_module"] == "models_mae_spectral.MaskedAutoencoderViT"
  assert m["variant"] == TINY_MAE and m["model"] == {"name": TINY_MAE}
  assert (m["image_size"], m["patch_size"], m["tubelet_size"]) == (32, 8, 3)
  assert m["token_grid"] == [4, 4, 4] and m["num_bands"] == 12
  assert m["bands"] == H.BANDS and m["normalization"] == H.NORMALIZATION
  assert m["training_step"] == 3 and m["config"] == {"optim": {"lr": 1e-2}}
  assert m["package"]["name"] == "spectralgpt_jax" and m["package"]["version"]
  assert m["constructor_kwargs"]["decoder_embed_dim"] == 32
  w = m["weights"]
  assert (w["format"], w["dtype"], w["num_tensors"]) == ("pth", "float32", 63)
  assert len(w["sha256"]) == 64
  twin = create_model(TINY_MAE)
  assert w["num_params"] == sum(p.numel() for p in twin.parameters())


def test_base_manifest_names_official_factory(tmp_path):
  """Base variant: factory resolution and the shape table (eval_shape only, no weights)."""
  spec = get_model("mae_vit_base_patch8_128").spec
  shapes = to_torch.layout_shapes(to_torch.target_model(spec, "finetune"))
  assert shapes["pos_embed"] == (1, 1024, 768) and shapes["head.weight"] == (10, 768)
  from spectralgpt_jax.export import manifest
  assert manifest._official_factory(spec, "vit") == ("vit_base_patch8_128", {"num_classes": 10})
  assert manifest._official_factory(spec, "mae") == ("mae_vit_base_patch8_128", {})


def test_shapes_of_a_model_with_dates():
  """num_dates > 1: the input is [B, T, C, S, S]; param and official shapes follow from it."""
  from spectralgpt_jax.models import shapes
  model = get_model(TINY_MAE, num_bands=6, num_dates=2, img_size=16)
  assert shapes.abstract_input(model.spec, batch=3).shape == (3, 2, 6, 16, 16)
  params = shapes.param_shapes(model)
  assert params["pos_embed_date"].shape == (1, 2, 64)
  assert params["pos_embed_temporal"].shape == (1, 2, 64)  # 6 bands / t_patch 3
  layout = to_torch.layout_shapes(model)
  assert layout["pos_embed_date"] == (1, 2, 64) and layout["decoder_pos_embed_date"] == (1, 2, 32)
  assert layout["patch_embed.proj.weight"] == (64, 1, 3, 8, 8)
  assert sum(int(np.prod(v)) for v in layout.values()) == shapes.count(params)


# ------------------------------------------------------------------------------ errors


def test_existing_output_is_not_overwritten_without_force(trained_mae, tmp_path, capsys):
  out = tmp_path / "w.pth"
  out.write_bytes(b"keep me")
  args = ["export", "--weights", str(trained_mae[0]), "--out", str(out)]
  assert cli(args) == 1
  assert "exists" in capsys.readouterr().err and out.read_bytes() == b"keep me"
  assert cli(args + ["--overwrite"]) == 0
  assert "wrote" in capsys.readouterr().out
  assert torch.load(out, weights_only=True)["model"]["norm.weight"].shape == (64,)


def test_mismatched_variant_lists_missing_and_unexpected_keys(trained_mae, tmp_path):
  with pytest.raises(to_torch.ExportError) as e:
    to_torch.export_checkpoint(trained_mae[0], tmp_path / "w.pth",
                               model="mae_vit_base_patch8_128")
  msg = str(e.value)
  assert "missing keys" in msg and "blocks.11.attn.q.weight" in msg
  assert "decoder_blocks.3.mlp.fc2.bias" in msg and "shape mismatches" in msg
  assert not (tmp_path / "w.pth").exists()


def test_missing_parameters_are_listed(tmp_path):
  model = get_model(TINY_MAE)
  params = H.random_params(model)
  del params["norm"], params["decoder_pred"]
  H.write_training_checkpoint(tmp_path / "run", params, model={"name": TINY_MAE})
  with pytest.raises(to_torch.ExportError) as e:
    to_torch.export_checkpoint(tmp_path / "run", tmp_path / "w.pth")
  msg = str(e.value)
  assert "'norm.weight'" in msg and "'decoder_pred.bias'" in msg and "unexpected keys []" in msg


def test_vit_cannot_be_exported_as_pretrain(tmp_path, capsys):
  model = get_model(TINY_VIT, pos_embed="official_zeros")
  H.write_training_checkpoint(tmp_path / "run", H.random_params(model),
                              model={"name": TINY_VIT, "pos_embed": "official_zeros"})
  rc = cli(["export", "--weights", str(tmp_path / "run"), "--out", str(tmp_path / "w.pth")])
  err = capsys.readouterr().err
  assert rc == 1 and "mask_token" in err and "decoder_pred.weight" in err
  assert "unexpected keys ['head.bias', 'head.weight', 'pos_embed']" in err


def test_checkpoint_errors_name_the_problem(trained_mae, tmp_path):
  with pytest.raises(FileNotFoundError, match=r"step 9 not found; available steps \[3\]"):
    to_torch.export_checkpoint(trained_mae[0], tmp_path / "w.pth", step=9)
  with pytest.raises(FileNotFoundError, match="no orbax checkpoint"):
    to_torch.export_checkpoint(tmp_path, tmp_path / "w.pth")
  with pytest.raises(ValueError, match="target must be one of"):
    to_torch.export_checkpoint(trained_mae[0], tmp_path / "w.pth", target="segment")
