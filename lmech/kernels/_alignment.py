"""Centred kernel-target alignment, the one implementation theory and simulation share."""
from __future__ import annotations

import numpy as np

__all__ = ["centered_alignment_unchecked"]


def centered_alignment_unchecked(K: np.ndarray, y: np.ndarray, degenerate: float = np.nan) -> np.ndarray:
    """``A = y~^T K~ y~ / (|K~|_F |y~|^2)`` with ``K~ = H K H``, ``y~ = H y``, ``H = I - 11^T / P``.

    No input checks (callers validate). ``K`` may carry leading batch axes ``(..., P, P)``;
    ``degenerate`` is returned where the denominator is not positive (constant labels, or a
    kernel that vanishes after centring).
    """
    K = np.asarray(K, dtype=float)
    y = np.asarray(y, dtype=float)
    Kc = K - K.mean(axis=-1, keepdims=True)
    Kc = Kc - Kc.mean(axis=-2, keepdims=True)
    yc = y - y.mean()
    with np.errstate(invalid="ignore", over="ignore"):
        num = np.asarray(np.einsum("i,...ij,j->...", yc, Kc, yc))
        den = np.asarray(np.linalg.norm(Kc, axis=(-2, -1)) * (yc @ yc))
    return np.divide(num, den, out=np.full(num.shape, degenerate, dtype=float), where=den > 0)
