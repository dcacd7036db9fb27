"""`python -m spectralgpt_jax.compile --target T --config C`: see compile/aot.py."""

from __future__ import annotations

import sys

from spectralgpt_jax.compile import aot

if __name__ == "__main__":
  sys.exit(aot.main())
