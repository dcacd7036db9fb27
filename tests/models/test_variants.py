"""Every variant's parameter count equals the official one in the spec, to the parameter."""

import re
import subprocess
import sys

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


@pytest.mark.parametrize("name", [n for n, s in VARIANTS.items() if s.official_name])
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
