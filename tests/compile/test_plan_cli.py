"""Fast checks of the memory plan's search order and the `compile` command (no compiler needed)."""

from __future__ import annotations

import ml_collections
import pytest

from spectralgpt_jax.compile import plan, targets


def test_candidates_in_cost_order_and_microbatches_of_at_least_one():
  cands = plan.candidates(batch=64, batch_split=16)
  assert [(c["remat"], c["accum_steps"]) for c in cands[:3]] == [
      ("none", 1), ("none", 2), ("none", 4)]
  assert max(c["accum_steps"] for c in cands) == 4  # 64 / 16 devices: 4 examples each at most
  assert cands == sorted(cands, key=lambda c: c["cost"])
  assert {c["remat"] for c in cands} == {"none", "dots", "full"}


def test_plan_stops_at_the_first_fit_with_headroom():
  target = targets.get_target("v5e-8")
  seen = []

  def fake_compile(config, name):
    seen.append((config.model.remat, config.optim.accum_steps))
    need = {1: 20, 2: 14.5, 4: 10}[config.optim.accum_steps] * targets.GIB  # GiB per device
    if need > target.memory_bytes:
      return {"compiled": False, "verdict": "does not fit", "memory": {"refused_need_gib": 20}}
    return {"compiled": True, "verdict": "fits", "compile_s": 1.0,
            "memory": {"total": need, "total_gib": need / targets.GIB,
                       "device_memory_gib": 15.75}}

  c = ml_collections.ConfigDict({"batch_size": 64, "mesh": {"data": 1, "fsdp": -1, "tensor": 1},
                                 "model": {"remat": "full"}, "optim": {"accum_steps": 1}})
  out = plan.plan(c, "v5e-8", compile_fn=fake_compile, log=lambda s: None)
  # 14.5 GiB fits 15.75 but leaves < 10% free: the plan goes on to accum 4.
  assert seen == [("none", 1), ("none", 2), ("none", 4)]
  assert out["choice"]["accum_steps"] == 4 and out["choice"]["remat"] == "none"
  assert c.model.remat == "full"  # the caller's config is untouched


def test_compile_command_without_compiler_says_which_make_target(capsys):
  from spectralgpt_jax import __main__ as entry
  for name, make in (("v5e-256", "setup-tpu"), ("8xh100", "setup-cuda12")):
    platform = targets.get_target(name).platform
    if targets.compiler_available(platform)[0]:
      continue
    rc = entry.main(["compile", "--target", name,
                     "--config", "configs/pretrain/spectralgpt_huge.py"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"make {make}" in err and "\n" not in err


def test_compile_command_requires_a_known_target(capsys):
  from spectralgpt_jax import __main__ as entry
  assert entry.main(["compile", "--config", "x.py"]) == 2
  assert entry.main(["compile", "--target=v9-1", "--config", "x.py"]) == 2
  assert "unknown compile target" in capsys.readouterr().err
