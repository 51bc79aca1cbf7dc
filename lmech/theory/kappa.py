"""The renormalised-ridge (kappa) self-consistent equation of kernel/ridge regression.

Kernel-sum convention (predictor ``k(x)^T (K + ridge I)^{-1} y`` with the unnormalised
P x P Gram matrix). For eigenvalues ``lam_k`` with multiplicities ``m_k`` and P samples,
kappa solves

    kappa = ridge + kappa * sum_k m_k lam_k / (P lam_k + kappa)                    (K1)

[Bordelon, Canatar & Pehlevan, "Spectrum dependent learning curves in kernel regression
and wide neural networks"; Canatar, Bordelon & Pehlevan, "Spectral bias and task-model
alignment explain generalization in kernel regression and infinitely wide neural
networks"]. The sample-covariance convention (``w = (X^T X/P + l I)^{-1} X^T y/P``) has
``ridge = P l`` and ``kappa_cov = kappa / P``.

We solve the monotone form, with u = log kappa,

    h(u) = ridge e^{-u} + sum_k m_k lam_k / (P lam_k + e^u) - 1 = 0,

which is strictly decreasing in u, by a bracketed Newton iteration vectorised over all
(P, ridge) pairs at once (bisection whenever a Newton step leaves the bracket). With
``ridge = 0`` and ``n_+ = sum of multiplicities of nonzero eigenvalues <= P`` there is no
positive root and kappa = 0 exactly (interpolation in the under-parameterised regime).
Fixed-point iteration of (K1) is never used: it slows down without bound as ridge -> 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_SIZE, check_array, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged

__all__ = ["KappaResult", "solve_kappa", "check_spectrum"]


@dataclass(frozen=True, kw_only=True)
class KappaResult(SolverResult):
    """Solution of (K1) on a grid.

    Attributes
    ----------
    kappa : ndarray, shape (n,)
        Renormalised ridge for each (P, ridge) pair (broadcast together, flattened).
    P : ndarray, shape (n,)
        Sample sizes.
    ridge : ndarray, shape (n,)
        Explicit ridges.
    """

    kappa: np.ndarray
    P: np.ndarray
    ridge: np.ndarray


def check_spectrum(eigenvalues, multiplicities=None, *, name: str = "eigenvalues"):
    """Validate a spectrum: 1-d, finite, non-negative, not all zero; multiplicities >= 0."""
    lam = check_array(eigenvalues, name, ndim=1, nonnegative=True, min_size=1)
    if not np.any(lam > 0):
        fail(name, "not all zero", lam)
    if multiplicities is None:
        mult = np.ones_like(lam)
    else:
        mult = check_array(multiplicities, "multiplicities", shape=(lam.shape[0],), nonnegative=True)
    return lam, mult


_BLOCK_ELEMENTS = 1 << 17  # rows x modes per block: the Newton iterations run in cache


def _newton_block(P_a, r_a, lam_p, mlam, trace, rtol, max_iter):
    """Bracketed Newton on h(u) for a block of (P, ridge) rows; returns kappa, the relative
    residual |kappa - ridge - kappa sum m lam/(P lam + kappa)| / max(kappa, ridge), iterations."""
    lo = np.where(r_a > 0, np.log(np.maximum(r_a, 1e-300)), np.log(1e-300))
    hi = np.log(r_a + trace)
    # initial guess: the larger of ridge and the P -> 0 scale, clipped to the bracket
    u = np.clip(np.log(np.maximum(r_a, trace / (1.0 + P_a))), lo, hi)
    PL = P_a[:, None] * lam_p[None, :]
    buf = np.empty_like(PL)
    h = np.full(u.shape, np.inf)
    k = np.exp(u)
    it = 0
    for it in range(1, max_iter + 1):
        k = np.exp(u)
        np.add(PL, k[:, None], out=buf)
        np.reciprocal(buf, out=buf)  # 1 / (P lam + kappa)
        s1 = buf @ mlam  # sum m lam / (P lam + kappa)
        h = r_a / k + s1 - 1.0
        # update the bracket (h is decreasing in u)
        lo = np.where(h > 0, u, lo)
        hi = np.where(h <= 0, u, hi)
        done = np.abs(h) <= rtol
        if np.all(done | (hi - lo <= 1e-15 * np.maximum(1.0, np.abs(u)))):
            break
        np.multiply(buf, buf, out=buf)
        dh = -r_a / k - k * (buf @ mlam)
        step = np.where(dh < 0, -h / dh, 0.0)
        u_new = u + step
        bad = ~np.isfinite(u_new) | (u_new <= lo) | (u_new >= hi)
        u = np.where(done, u, np.where(bad, 0.5 * (lo + hi), u_new))
    # kappa - ridge - kappa s1 = kappa h
    res = np.abs(k * h) / np.maximum(np.maximum(k, r_a), 1e-300)
    return k, res, it


def solve_kappa(
    eigenvalues,
    P,
    ridge=0.0,
    *,
    multiplicities=None,
    rtol: float = 1e-13,
    max_iter: int = 200,
) -> KappaResult:
    """Solve (K1) for kappa at every (P, ridge) pair, vectorised.

    Equation (eq:kernel.kappa): ``kappa = ridge + kappa * sum_k m_k lam_k / (P lam_k + kappa)``

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Kernel eigenvalues (any order, >= 0; zeros allowed and ignored in the sum).
    P : float or array_like
        Number of training samples (> 0; non-integer values are allowed for continuous curves).
    ridge : float or array_like
        Explicit ridge (kernel-sum convention), >= 0; broadcast against ``P``.
    multiplicities : array_like, shape (M,), optional
        Degeneracy of each eigenvalue (e.g. spherical-harmonic level sizes).
    rtol : float
        Tolerance on |h(u)|, the relative residual of (K1).
    max_iter : int
        Iteration cap; if reached, ``converged=False`` and a ConvergenceWarning is issued.

    Returns
    -------
    KappaResult
        ``residual`` is max |kappa - ridge - kappa sum m lam/(P lam + kappa)| / max(kappa, ridge).
    """
    lam, mult = check_spectrum(eigenvalues, multiplicities)
    P_arr = check_array(P, "P", ndim=(0, 1), positive=True)
    r_arr = check_array(ridge, "ridge", ndim=(0, 1), nonnegative=True)
    rtol = check_real(rtol, "rtol", lo=0.0, hi=1.0, lo_closed=False)
    max_iter = check_int(max_iter, "max_iter", lo=1, hi=MAX_SIZE)
    try:
        P_b, r_b = np.broadcast_arrays(np.atleast_1d(P_arr), np.atleast_1d(r_arr))
    except ValueError:
        raise ValueError(f"`P` (shape {P_arr.shape}) and `ridge` (shape {r_arr.shape}) must broadcast") from None
    P_b = np.array(P_b, dtype=float)
    r_b = np.array(r_b, dtype=float)

    pos = lam > 0
    lam_p, m_p = lam[pos], mult[pos]
    n_plus = float(m_p.sum())
    trace = float(np.sum(m_p * lam_p))

    kappa = np.zeros_like(P_b)
    zero = (r_b == 0) & (P_b >= n_plus)  # ridgeless, under-parameterised: kappa = 0 exactly
    res = np.zeros_like(P_b)
    iterations = 0
    idx = np.flatnonzero(~zero)
    mlam = m_p * lam_p
    rows = max(1, _BLOCK_ELEMENTS // max(lam_p.size, 1))
    for b0 in range(0, idx.size, rows):  # blocks of rows stay in cache through all iterations
        sel = idx[b0:b0 + rows]
        k_blk, res_blk, it = _newton_block(P_b[sel], r_b[sel], lam_p, mlam, trace, rtol, max_iter)
        kappa[sel], res[sel] = k_blk, res_blk
        iterations = max(iterations, it)
    residual = float(np.max(res)) if res.size else 0.0
    finite = bool(np.all(np.isfinite(kappa)))
    converged = bool(finite and residual <= max(1e3 * rtol, 1e-10))
    message = "converged" if converged else f"kappa equation not solved to tolerance (relative residual {residual:.3g})"
    # every point ridgeless and under-parameterised: kappa = 0 solves (K1) exactly, no iteration
    status = ("closed_form" if idx.size == 0 else "converged") if converged else (
        "max_iter" if finite else "diverged")
    if status == "diverged":
        message = "Newton iteration for kappa produced non-finite values"
    elif status == "closed_form":
        message = "closed form: kappa = 0 (ridgeless and P >= n+ everywhere)"
    if not converged:
        warn_not_converged("solve_kappa", message)
    return KappaResult(
        kappa=kappa, P=P_b, ridge=r_b, converged=converged, status=status, iterations=int(iterations),
        residual=residual, message=message,
        extras={"n_plus": n_plus, "trace": trace, "interpolating": zero},
    )
