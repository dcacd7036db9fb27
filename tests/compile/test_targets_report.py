"""Fast checks of the target table and the HLO parsing (no compiler needed)."""

from __future__ import annotations

import pathlib

import pytest

from spectralgpt_jax.cli import _config
from spectralgpt_jax.compile import aot, report, targets

ROOT = pathlib.Path(__file__).resolve().parents[2]

REQUIRED = ("v4-32", "v5e-256", "v5p-128", "v6e-256", "v5e-4", "v5e-8", "h100", "8xh100", "h200")


def test_table_has_the_named_targets():
  for name in REQUIRED:
    t = targets.get_target(name)
    assert t.platform in ("tpu", "cuda") and t.num_devices >= 1
    assert t.memory_bytes > 8 * targets.GIB and t.peak_bf16_tflops > 100
  assert targets.get_target("v5p-128").device_kind == "TPU v5"  # not "TPU v5p"
  assert targets.get_target("v4-32").chip_config == "megacore"
  with pytest.raises(ValueError, match="unknown compile target"):
    targets.get_target("v9-1")


def test_gpu_target_configs_ship_with_the_package():
  for name in ("h100", "h200"):
    text = targets.gpu_target_config(targets.get_target(name))
    assert 'platform_name: "CUDA"' in text and "device_memory_size" in text


def test_missing_compiler_names_the_extra():
  for platform, extra in (("tpu", "tpu"), ("cuda", "cuda12")):
    ok, why = targets.compiler_available(platform)
    if ok:
      continue
    assert f".[{extra}]" in why
    name = "v5e-4" if platform == "tpu" else "h100"
    with pytest.raises(targets.MissingCompilerError, match=extra):
      targets.target_devices(name)


HLO = """
  %all-gather-start.1 = (f32[8]{0}, f32[32]{0}) all-gather-start(f32[8]{0} %p), dimensions={0}
  %all-gather-done.1 = f32[32]{0} all-gather-done((f32[8]{0}, f32[32]{0}) %all-gather-start.1)
  %rs = f32[8]{0} reduce-scatter(f32[32]{0} %x), dimensions={0}, to_apply=%add
  %ar = f32[8]{0} all-reduce(f32[8]{0} %y), to_apply=%add
  %fusion.3 = f32[1024,64]{0,1} fusion(f32[1024,512] %r), kind=kCustom, calls=%all-reduce-scatter
  %cc = f32[8]{0} custom-call(f32[8]{0} %y), custom_call_target="spectralgpt_attention_forward"
"""


def test_hlo_parsing():
  assert report.collectives(HLO) == {"all-gather": 1, "reduce-scatter": 2, "all-reduce": 1,
                                     "all-to-all": 0, "collective-permute": 0}
  calls = report.custom_calls(HLO)
  assert calls == {"spectralgpt_attention_forward": 1}
  assert aot.forbidden_custom_calls({"custom_calls": calls}) == calls


def test_refusal_text_parsing():
  text = ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO "
          "temporaries (54.77G) exceeds available HBM (15.75G).")
  got = report._refusal_numbers(text)  # pylint: disable=protected-access
  assert got == {"refused_need_gib": 54.77, "device_memory_gib": 15.75}


def test_load_config_with_arg():
  c = _config.load(f"{ROOT}/configs/pretrain/spectralgpt_large.py:stage=2")
  assert c.image_size == 128 and "large" in c.model.name


def test_custom_calls_are_found_in_stablehlo_text_too():
  """A Lowered's text is StableHLO: Pallas kernels and cuDNN appear as `custom_call @name`."""
  text = ('%0 = stablehlo.custom_call @tpu_custom_call(%a) {backend_config = "x"}\n'
          '%1 = stablehlo.custom_call @"__cudnn$fmhaSoftmax"(%q, %k, %v)\n'
          '%2 = stablehlo.custom_call @spectralgpt_attention_forward(%1)\n'
          'custom-call(%p), custom_call_target="__cudnn$fmhaSoftmaxBackward"')
  assert report.custom_calls(text) == {
      "tpu_custom_call": 1, "__cudnn$fmhaSoftmax": 1, "spectralgpt_attention_forward": 1,
      "__cudnn$fmhaSoftmaxBackward": 1}
  assert aot.forbidden_custom_calls({"lowered_custom_calls": report.custom_calls(text)}) == {
      "spectralgpt_attention_forward": 1}
