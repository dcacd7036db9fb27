"""Every variant's parameter count equals the official one in the spec, to the parameter."""

import re
import subprocess
import sys

import jax.numpy as jnp
import pytest

from spectralgpt_jax.models import VARIANTS, get_model, shapes


def _official_counts(path) -> dict[str, tuple[int, int | None]]:
  section = path.read_text().split("### parameter counts (all variants)")[1].split("###")[0]
  counts = {}
  for line in section.strip().splitlines():
    name = line.split(":")[0].split("(")[0]
    total = int(re.search(r"total=([\d,]+)", line).group(1).replace(",", ""))
    enc = re.search(r"encoder=([\d,]+)", line)
    counts[name] = (total, int(enc.group(1).replace(",", "")) if enc else None)
  return counts


# Dense models (kinds seg / change) are counted in tests/models/test_segmenter.py.
@pytest.mark.parametrize("name", [n for n, s in VARIANTS.items()
                                  if s.official_name and s.kind in ("mae", "vit")])
def test_param_count_equals_official(name, official_keys_file):
  official = _official_counts(official_keys_file)
  assert name in official, f"{name} missing from the spec's count table"
  total, encoder = official[name]
  spec = VARIANTS[name]
  # The official classifier stores one [1, L, D] position table; that is our official mode.
  model = get_model(name, pos_embed="official_zeros") if spec.kind == "vit" else get_model(name)
  params = shapes.param_shapes(model)
  assert shapes.count(params) == total
  if encoder is not None:
    assert shapes.encoder_count(params) == encoder


def test_models_cli_lists_every_variant():
  out = subprocess.run([sys.executable, "-m", "spectralgpt_jax", "models"], capture_output=True,
                       text=True, check=True).stdout
  for name in VARIANTS:
    assert name in out
  assert "643,759,040" in out  # the 600M+ huge MAE


def test_build_model_from_records_old_and_new():
  """One builder for config.model, checkpoint meta and manifests; records written before the
  implementations left the model (attention/matmul fields) still build the same model."""
  from spectralgpt_jax.models import build_model
  new = build_model({"name": "mae_vit_tiny_patch8_32", "dtype": "bfloat16", "scan": True})
  old = build_model({"name": "mae_vit_tiny_patch8_32", "dtype": "bfloat16", "scan": True,
                     "attention": "auto", "matmul": "auto"})
  assert new == old and old.scan and old.dtype == jnp.bfloat16
  arch = build_model({"name": "vit_tiny_patch8_32", "dtype": "bfloat16", "pool": "mean",
                      "num_classes": 7}, runtime=False)
  assert arch.dtype == jnp.float32 and arch.spec.num_classes == 7 and arch.pool == "mean"
  with pytest.raises(ValueError, match="has no 'name'"):
    build_model({"img_size": 32})


def test_runtime_options_are_one_frozen_record():
  """get_model's runtime keywords build one Runtime record (model.runtime); a whole record may be
  passed instead, keywords winning; the record cannot be changed in place."""
  import dataclasses
  from spectralgpt_jax.models import Runtime, get_model
  by_keywords = get_model("vit_tiny_patch8_32", dtype=jnp.bfloat16, scan=True, remat="dots")
  by_record = get_model("vit_tiny_patch8_32",
                        runtime=Runtime(dtype=jnp.bfloat16, scan=True, remat="full"), remat="dots")
  assert by_keywords == by_record
  assert by_keywords.runtime == Runtime(jnp.bfloat16, jnp.float32, True, "dots")
  assert (by_keywords.dtype, by_keywords.scan, by_keywords.remat) == (jnp.bfloat16, True, "dots")
  with pytest.raises(dataclasses.FrozenInstanceError):
    by_keywords.runtime.scan = False
