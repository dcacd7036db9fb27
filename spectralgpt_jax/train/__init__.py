"""Pretraining: state, optimizer, pure train step, checkpointing, metrics and the loop."""
