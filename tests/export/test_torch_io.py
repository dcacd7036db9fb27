"""Safe .pth loading (weights_only, only argparse.Namespace allow-listed) and file formats."""

import argparse
import collections

import ml_dtypes
import numpy as np
import pytest
import torch

from spectralgpt_jax.export import torch_io


class _Payload:
  """Unpickling this would call print: stands for arbitrary code in a checkpoint."""

  def __reduce__(self):
    return (print, ("code ran",))


def test_official_wrapper_with_namespace_loads(tmp_path):
  sd = collections.OrderedDict(w=torch.arange(6.0).reshape(2, 3))
  torch.save({"model": sd, "optimizer": {"state": {}}, "epoch": 4, "scaler": {"scale": 2.0},
              "args": argparse.Namespace(model="m", lr=1e-3, dirs=["a"])}, tmp_path / "c.pth")
  state, extras = torch_io.load_state_dict(tmp_path / "c.pth")
  np.testing.assert_array_equal(state["w"], np.arange(6.0).reshape(2, 3))
  assert extras == {"epoch": 4, "args": {"model": "m", "lr": 1e-3, "dirs": ["a"]}}


def test_bare_and_ddp_state_dicts(tmp_path):
  torch.save({"module.a": torch.ones(2)}, tmp_path / "d.pth")
  state, extras = torch_io.load_state_dict(tmp_path / "d.pth")
  assert list(state) == ["a"] and extras == {}


def test_arbitrary_objects_are_refused(tmp_path, capsys):
  torch.save({"model": {"w": torch.ones(1)}, "x": _Payload()}, tmp_path / "evil.pth")
  with pytest.raises(torch_io.UnsafeCheckpointError, match=r"evil\.pth.*builtins\.print"):
    torch_io.load_pth(tmp_path / "evil.pth")
  assert "code ran" not in capsys.readouterr().out


def test_non_tensor_entries_are_rejected(tmp_path):
  torch.save({"model": {"w": torch.ones(1), "n": 3}}, tmp_path / "x.pth")
  with pytest.raises(ValueError, match="'n' is a int"):
    torch_io.load_state_dict(tmp_path / "x.pth")
  with pytest.raises(FileNotFoundError):
    torch_io.load_state_dict(tmp_path / "missing.pth")


def test_save_formats_round_trip_with_bfloat16(tmp_path):
  a = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
  state = {"f32": a, "bf16": a.astype(ml_dtypes.bfloat16)}
  torch_io.save_pth(state, tmp_path / "w.pth")
  raw = torch.load(tmp_path / "w.pth", weights_only=True)  # plain torch, no allow-list needed
  assert set(raw) == {"model"} and raw["model"]["bf16"].dtype == torch.bfloat16
  torch_io.save_safetensors(state, tmp_path / "w.safetensors", manifest={"format": "x"})
  for name in ("w.pth", "w.safetensors"):
    back, extras = torch_io.load_state_dict(tmp_path / name)
    assert back["bf16"].dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(back["bf16"], state["bf16"])
    np.testing.assert_array_equal(back["f32"], a)
  assert extras["manifest"] == {"format": "x"}
  with pytest.raises(FileExistsError, match="--overwrite"):
    torch_io.save_pth(state, tmp_path / "w.pth")
  torch_io.save_pth(state, tmp_path / "w.pth", force=True)
