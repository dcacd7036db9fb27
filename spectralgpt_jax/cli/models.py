"""`python -m spectralgpt_jax models`: every registered variant, its size and official name.

Counts come from the variant table by arithmetic (models/param_count.py): no model is built or
initialised, so the table prints at once.
"""

from __future__ import annotations

import argparse

from spectralgpt_jax.cli import _failures, _flags

HELP = "list model variants with parameter counts, token grids and official names"
EXAMPLES = ("python -m spectralgpt_jax models",)


def build_parser() -> argparse.ArgumentParser:
  return _flags.parser("models", __doc__, EXAMPLES)


@_failures.command("models")
def main(argv: list[str]) -> int:
  _flags.parse(build_parser(), argv)
  from spectralgpt_jax.models import param_count, variants  # pylint: disable=g-import-not-at-top

  header = (f"{'name':<34}{'kind':<7}{'params':>14}{'encoder':>14}  {'grid (T,H,W)':<14}"
            f"{'tokens':>7}  official")
  print(header)
  print("-" * len(header))
  for name, spec in variants.VARIANTS.items():
    total, encoder = param_count.count_params(spec)
    grid = "x".join(str(g) for g in spec.grid)
    official = spec.official_name or "(test variant)"
    print(f"{name:<34}{spec.kind:<7}{total:>14,}{encoder:>14,}  {grid:<14}{spec.num_tokens:>7}  "
          f"{official}")
  print("\nvit_* counts use separable position tables (spatial + spectral). With "
        "pos_embed='official_zeros'\nthey equal the official models_vit_tensor counts "
        "(one [1, L, D] table).")
  return 0
