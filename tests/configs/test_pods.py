"""Pod presets: each plan's mesh covers its target's devices and splits the global batch evenly."""

from __future__ import annotations

import pathlib

import pytest

from spectralgpt_jax.cli import _config
from spectralgpt_jax.compile import targets

PODS = sorted(pathlib.Path(__file__).resolve().parents[2].glob("configs/pods/*_*.py"))
TARGET = {"v5e256": "v5e-256", "8xh100": "8xh100"}


@pytest.mark.parametrize("path", PODS, ids=lambda p: p.stem)
def test_preset_plans_fit_their_target_shape(path):
  target = targets.get_target(TARGET[path.stem.split("_")[1]])
  for batch in (4096, 2048):
    c = _config.load(f"{path}:batch={batch}")
    assert c.batch_size == batch and c.data.batch_size == batch
    assert c.optim.lr == pytest.approx(c.optim.blr * batch / 256)  # the recipe's lr rule
    assert c.mesh.data * c.mesh.fsdp * c.mesh.tensor == target.num_devices
    assert batch % (c.mesh.data * c.mesh.fsdp * c.optim.accum_steps) == 0
    assert c.model.remat in ("none", "dots", "full")
  with pytest.raises(ValueError, match="no plan for global batch"):
    _config.load(f"{path}:batch=1024")
