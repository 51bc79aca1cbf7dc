"""Simulators: the real systems the theories describe, trained in PyTorch or NumPy."""
