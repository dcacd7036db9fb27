"""SpectralGPT in JAX/Flax: spectral masked autoencoder for Sentinel-2 cubes.

Subpackages: `models` (Flax linen modules), `losses`, `sharding`, `train`, `checkpoints`
(orbax checkpoints of a run), `export` (PyTorch weight mapping), `inference` (`load(path)`),
`cli` (the `python -m spectralgpt_jax <command>` entry points). Importing the root imports
nothing.
"""

__version__ = "0.1.0"

