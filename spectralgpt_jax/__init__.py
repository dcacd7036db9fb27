"""SpectralGPT in JAX/Flax: spectral masked autoencoder for Sentinel-2 cubes.

Subpackages: `models` (Flax linen modules), `losses`, `sharding`, `export` (PyTorch weight
mapping), `cli` (the `python -m spectralgpt_jax <command>` entry points).
"""

__version__ = "0.1.0"


def load(*args, **kwargs):
  """Loads weights for inference; see `spectralgpt_jax.inference.load` (imported lazily)."""
  from spectralgpt_jax.inference import load as _load  # pylint: disable=g-import-not-at-top
  return _load(*args, **kwargs)
