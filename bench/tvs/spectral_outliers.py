"""Outlier singular values of a spiked random matrix: secular equation vs sampling a matrix.

The sampled size (N = 1500) is the one at which a single sample's outlier is within about 1% of
the large-N value (the outlier fluctuates as N^-1/2), the accuracy the claims ask of the theory.
"""
import numpy as np

from lmech.theory.spectral_outliers import outlier_positions

N = 1500


def _sample(theta, kappa, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, N)) / np.sqrt(N)
    v = rng.standard_normal(N)
    v /= np.linalg.norm(v)
    h = X @ v
    r = rng.standard_normal(N)
    r -= (r @ h) / (h @ h) * h
    u = kappa * h / (h @ h) + np.sqrt(1 - kappa**2 / (h @ h)) * r / np.linalg.norm(r)
    return np.linalg.svd(X + theta * np.outer(u, v), compute_uv=False)[0]


CASES = [
    ("free spike theta=1.5, N=1500", lambda: outlier_positions([1.5], N, N), lambda: _sample(1.5, 0.0)),
    ("dependent spike kappa=0.7, N=1500", lambda: outlier_positions([1.1], N, N, overlap=0.7),
     lambda: _sample(1.1, 0.7)),
]
