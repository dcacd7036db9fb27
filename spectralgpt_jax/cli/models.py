"""`python -m spectralgpt_jax models`: every registered variant, its size and official name."""

from __future__ import annotations

import argparse

HELP = "list model variants with parameter counts, token grids and official names"


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(prog="spectralgpt_jax models", description=HELP)
  parser.parse_args(argv)
  from spectralgpt_jax.models import VARIANTS, get_model, shapes  # pylint: disable=import-outside-toplevel

  header = f"{'name':<34}{'kind':<7}{'params':>14}{'encoder':>14}  {'grid (T,H,W)':<14}{'tokens':>7}  official"
  print(header)
  print("-" * len(header))
  for name, spec in VARIANTS.items():
    params = shapes.param_shapes(get_model(name))
    total = shapes.count(params)
    encoder = shapes.encoder_count(params)
    grid = "x".join(str(g) for g in spec.grid)
    official = spec.official_name or "(test variant)"
    print(f"{name:<34}{spec.kind:<7}{total:>14,}{encoder:>14,}  {grid:<14}{spec.num_tokens:>7}  "
          f"{official}")
  print("\nvit_* counts use separable position tables (spatial + spectral). With "
        "pos_embed='official_zeros'\nthey equal the official models_vit_tensor counts "
        "(one [1, L, D] table).")
  return 0
