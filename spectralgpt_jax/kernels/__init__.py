"""Hand-written kernels for backends where XLA's own code is slow (see each module)."""
