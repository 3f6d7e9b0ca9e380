"""Hand-written kernels of the jax backend that have no file of their own on the torch side."""
