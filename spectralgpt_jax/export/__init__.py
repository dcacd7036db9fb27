"""Weights in and out: the Flax <-> official PyTorch state_dict mapping."""
