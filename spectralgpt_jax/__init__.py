"""SpectralGPT in JAX/Flax: spectral masked autoencoder for Sentinel-2 cubes.

Subpackages: `models` (Flax linen modules), `losses`, `sharding`, `export` (PyTorch weight
mapping), `cli` (the `python -m spectralgpt_jax <command>` entry points).
"""

__version__ = "0.1.0"
