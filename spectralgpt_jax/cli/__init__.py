"""Command-line entry points; each module is one `python -m spectralgpt_jax <command>`."""
