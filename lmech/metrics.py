"""Comparison metrics of theory against simulation (base layer).

Every relative error names its denominator: :func:`rel_err_theory` divides by the theory,
:func:`rel_err_sim` by the simulation. Both take ``(theory, sim)`` in that order, so a call
site reads the same whichever denominator it chose. They are elementwise; reduce with
``.mean()`` or ``.max()`` and say which in the claim's metric.

NaN and inf propagate on purpose: a NaN input (a diverged run) or a zero denominator gives a
NaN/inf error, which no tolerance accepts, so the claim fails visibly instead of the metric
hiding the problem. Non-numeric input (None, strings) raises TypeError.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rel_err_theory", "rel_err_sim", "abs_err", "log_ratio", "norm_rel_err_theory"]


def _as_float(x, name: str) -> np.ndarray:
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(f"`{name}` must be an array of numbers; got {x!r:.80}")
    try:
        return np.asarray(x, dtype=np.float64)
    except OverflowError:
        raise ValueError(f"`{name}` must be an array of numbers within float range") from None
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be an array of numbers; got {x!r:.80}") from None


def _pair(theory, sim) -> tuple[np.ndarray, np.ndarray]:
    t = _as_float(theory, "theory")
    s = _as_float(sim, "sim")
    if t.shape != s.shape and t.size != 1 and s.size != 1:
        raise ValueError(f"`sim` must have the shape of `theory` {t.shape}; got {s.shape}")
    return t, s


def rel_err_theory(theory, sim) -> np.ndarray:
    """``|sim - theory| / |theory|`` elementwise (the theory is the denominator)."""
    t, s = _pair(theory, sim)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(s - t) / np.abs(t)


def rel_err_sim(theory, sim) -> np.ndarray:
    """``|theory - sim| / |sim|`` elementwise (the simulation is the denominator)."""
    t, s = _pair(theory, sim)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(t - s) / np.abs(s)


def abs_err(theory, sim) -> np.ndarray:
    """``|sim - theory|`` elementwise."""
    t, s = _pair(theory, sim)
    return np.abs(s - t)


def log_ratio(theory, sim) -> np.ndarray:
    """``|log(sim / theory)|`` elementwise: a symmetric relative error for positive data."""
    t, s = _pair(theory, sim)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(np.log(s / t))


def norm_rel_err_theory(theory, sim) -> float:
    """``||sim - theory|| / ||theory||`` over the whole array (Frobenius/Euclidean norm)."""
    t, s = _pair(theory, sim)
    return float(np.linalg.norm(s - t) / np.linalg.norm(t))
