"""Spectra: power laws, and (see below) empirical eigen-systems of kernels on data.

Conventions used across lmech: ``eigenvalues[k]`` are kernel (or feature-covariance)
eigenvalues with respect to the data distribution; ``target_power[k]`` is the squared
coefficient of the target on the k-th *orthonormal* eigenfunction.
"""
from __future__ import annotations

import numpy as np

from lmech._validation import check_int, check_real

__all__ = ["power_law"]


def power_law(n_modes: int, exponent: float, *, scale: float = 1.0, normalize: bool = False) -> np.ndarray:
    """``scale * k**(-exponent)`` for k = 1..n_modes (float64).

    With ``normalize=True`` the result is rescaled to sum to ``scale``.
    """
    n = check_int(n_modes, "n_modes", lo=1)
    a = check_real(exponent, "exponent")
    s = check_real(scale, "scale", lo=0, lo_closed=False)
    out = np.arange(1, n + 1, dtype=np.float64) ** (-a)
    if normalize:
        out /= out.sum()
    return s * out
