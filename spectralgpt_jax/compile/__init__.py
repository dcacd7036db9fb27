"""Ahead-of-time compiles of the train step for TPU / GPU targets from a CPU host (no jax import)."""
