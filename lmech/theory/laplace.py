"""Laplace-domain core: complex renormalised ridge and fixed-Talbot inversion.

Dynamical theories of linear models trained by gradient flow are easiest to write in the
Laplace domain: the error operator ``exp(-t H)`` of a random matrix ``H`` becomes a
resolvent ``(s + H)^{-1}``, whose average is given by a deterministic equivalent in
terms of a renormalised ridge kappa(s) evaluated at complex s. This module holds the two
numerical kernels every such theory needs, and nothing else:

* :func:`solve_kappa_complex` -- the covariance-convention self-consistent equation at
  complex s (Newton with continuation along a path, physical branch, residual check,
  subdivision on failure);
* :func:`invert_laplace` / :func:`talbot_nodes` -- the fixed-Talbot inverse Laplace
  transform (Abate & Valko), vectorised over t, with an M versus M + 8 accuracy check.

Conventions
-----------
The complex equation is written in the *sample-covariance* convention (ridge s, "sample
count" n; n is P for a data resolvent and N for a random-projection resolvent):

    kappa = s + (kappa / n) * sum_k m_k lam_k / (lam_k + kappa)                        (L1)

For real s > 0 this is the kernel-sum equation solved by :func:`lmech.theory.kappa.solve_kappa`
with ``P = n`` and ``ridge = n s`` (kappa_cov = kappa_kernel / n). The physical branch is the
one with kappa -> s + tr(Lambda)/n as |s| -> infinity, real and positive on s > 0, and
Im kappa of the same sign as Im s (kappa maps the upper half plane into itself).

References: B. Bordelon, A. Atanasov, C. Pehlevan, "A Dynamical Model of Neural Scaling
Laws" (the Laplace-domain treatment of random-feature gradient flow); J. Abate and P.
Valko, "Multi-precision Laplace transform inversion" (the fixed-Talbot contour).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lmech._validation import as_complex_array, check_array, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.kappa import check_spectrum, solve_kappa

__all__ = [
    "ComplexKappaResult",
    "solve_kappa_complex",
    "TalbotNodes",
    "talbot_nodes",
    "LaplaceInversion",
    "invert_laplace",
    "talbot_sum",
]


# --------------------------------------------------------------------------- complex kappa
@dataclass(frozen=True, kw_only=True)
class ComplexKappaResult(SolverResult):
    """Solution of (L1) along one or several continuation paths.

    Attributes
    ----------
    kappa : ndarray of complex, same shape as ``s``
        Renormalised ridge on the physical branch at every node.
    s : ndarray of complex
        The nodes (as given).
    n : float
        The "sample count" in (L1).
    subdivisions : int
        Total number of extra continuation sub-steps that were needed.
    """

    kappa: np.ndarray
    s: np.ndarray
    n: float
    subdivisions: int = 0


def _g_and_dg(kappa, s, lam, mult, n):
    """g(kappa) = kappa - s - (kappa/n) sum m lam/(lam+kappa) and g'(kappa); kappa shape (B,)."""
    den = lam[None, :] + kappa[:, None]
    r = mult * lam / den
    g = kappa - s - kappa * r.sum(axis=1) / n
    dg = 1.0 - (r * (lam / den)).sum(axis=1) / n
    return g, dg


def _newton(k0, s, lam, mult, n, tol, max_iter):
    """Vectorised Newton from k0; returns (kappa, ok, rel_residual, iterations)."""
    k = k0.astype(complex).copy()
    it = 0
    for it in range(1, max_iter + 1):
        g, dg = _g_and_dg(k, s, lam, mult, n)
        step = g / dg
        k = k - step
        if np.all(np.abs(step) <= 1e-15 * np.maximum(np.abs(k), 1e-300)):
            break
    g, _ = _g_and_dg(k, s, lam, mult, n)
    scale = np.maximum(np.abs(k), np.abs(s))
    res = np.abs(g) / np.maximum(scale, 1e-300)
    # physical branch: Re kappa > -min(lam) region is not guaranteed for complex s, but
    # Im kappa must share the sign of Im s (kappa is a Nevanlinna function of s)
    branch_ok = (np.sign(k.imag) == np.sign(s.imag)) | (np.abs(s.imag) <= 1e-14 * np.abs(s)) | (
        np.abs(k.imag) <= 1e-12 * np.abs(k)
    )
    ok = np.isfinite(k) & (res <= tol) & branch_ok
    return k, ok, res, it


def solve_kappa_complex(
    eigenvalues,
    n,
    s,
    *,
    multiplicities=None,
    tol: float = 1e-10,
    max_iter: int = 50,
    max_subdivisions: int = 12,
) -> ComplexKappaResult:
    """Solve (L1) for kappa(s) at complex nodes ``s`` by Newton with continuation.

    Equation (eq:laplace.kappa): ``kappa(s) = s + (kappa / n) sum_k m_k lam_k / (lam_k + kappa),  s complex``

    Parameters
    ----------
    eigenvalues : array_like, shape (K,)
        Covariance eigenvalues lam_k >= 0 (zeros are ignored).
    n : float
        Sample count (P for a data resolvent, N for a random-projection resolvent), > 0.
    s : array_like of complex, shape (..., J)
        Nodes. The last axis is a continuation path: node 0 must be real and positive
        (it is solved with the bracketed real solver), node j starts from node j-1's root.
        Leading axes are independent paths solved together (vectorised).
    multiplicities : array_like, shape (K,), optional
        Degeneracy of each eigenvalue.
    tol : float
        Required relative residual |g(kappa)| / max(|kappa|, |s|) at every node.
    max_iter : int
        Newton iterations per (sub)step.
    max_subdivisions : int
        A failed step from s_{j-1} to s_j is split into 2, 4, ... up to 2**max_subdivisions
        sub-steps before giving up (``converged=False`` and a ConvergenceWarning).

    Returns
    -------
    ComplexKappaResult
        ``kappa`` has the shape of ``s``; ``residual`` is the maximum relative residual.
    """
    lam, mult = check_spectrum(eigenvalues, multiplicities)
    n = check_real(n, "n", lo=0, lo_closed=False)
    tol = check_real(tol, "tol", lo=0, lo_closed=False)
    max_iter = check_int(max_iter, "max_iter", lo=1)
    max_subdivisions = check_int(max_subdivisions, "max_subdivisions", lo=0)
    s_arr = as_complex_array(s, "s")
    if s_arr.ndim == 0:
        s_arr = s_arr.reshape(1)
    if s_arr.size == 0 or not np.all(np.isfinite(s_arr)):
        fail("s", "a non-empty array of finite complex numbers", s)
    s0 = s_arr[..., 0]
    if np.any(np.abs(s0.imag) > 1e-14 * np.abs(s0)) or np.any(s0.real <= 0):
        fail("s", "a path whose first node (s[..., 0]) is real and positive", s0)

    pos = lam > 0
    lam, mult = lam[pos], mult[pos]
    shape = s_arr.shape
    paths = s_arr.reshape(-1, shape[-1])
    B, J = paths.shape

    # node 0: real solve; kernel-sum convention with P = n, ridge = n s  ->  kappa_cov = kappa/n
    real = solve_kappa(lam, np.full(B, n), n * paths[:, 0].real, multiplicities=mult)
    kap = np.empty((B, J), dtype=complex)
    kap[:, 0] = real.kappa / n
    max_res = float(real.residual)
    iters = int(real.iterations)
    subdivisions = 0
    failed = not real.converged
    for j in range(1, J):
        a, b = paths[:, j - 1], paths[:, j]
        k_prev = kap[:, j - 1]
        k, ok, res, it = _newton(k_prev, b, lam, mult, n, tol, max_iter)
        iters = max(iters, it)
        level = 0
        while not np.all(ok) and level < max_subdivisions:
            level += 1
            bad = ~ok
            steps = 2**level
            kk = k_prev[bad]
            for q in range(1, steps + 1):
                sq = a[bad] + (b[bad] - a[bad]) * (q / steps)
                kk, okq, resq, it = _newton(kk, sq, lam, mult, n, tol, max_iter)
                iters = max(iters, it)
            subdivisions += steps - 1
            # what counts is the root at the target node (residual and branch checked there)
            k[bad], ok[bad], res[bad] = kk, okq, resq
        if not np.all(ok):
            failed = True
        kap[:, j] = k
        max_res = max(max_res, float(np.max(res)))

    converged = (not failed) and max_res <= tol
    message = "converged" if converged else (
        f"complex kappa equation not solved to tolerance along the path (max relative residual {max_res:.3g})"
    )
    if not converged:
        warn_not_converged("solve_kappa_complex", message)
    return ComplexKappaResult(
        kappa=kap.reshape(shape), s=s_arr, n=n, subdivisions=subdivisions,
        converged=converged, iterations=iters, residual=max_res, message=message,
    )


# --------------------------------------------------------------------------- Talbot inversion
@dataclass(frozen=True)
class TalbotNodes:
    """Fixed-Talbot nodes and weights for a set of times.

    ``s`` and ``weights`` have shape (len(t), M) on the upper half contour (node 0 real);
    ``scale`` = r/M with shape (len(t),). The inverse transform is
    ``f(t) = scale * Re sum_j weights_j exp(t s_j) F(s_j)``.
    With ``full=True`` the lower half (conjugate nodes 1..M-1) is appended and every
    weight halved, so that ``scale * sum_j weights_j exp(t s_j) F(s_j)`` (no Re) is the
    inverse transform of a function that is *not* conjugate-symmetric (needed as the inner
    sum of a double inversion).
    """

    t: np.ndarray
    s: np.ndarray
    weights: np.ndarray
    scale: np.ndarray
    M: int
    full: bool = False


def talbot_nodes(t, M: int = 32, *, full: bool = False) -> TalbotNodes:
    """Nodes of the fixed-Talbot contour (Abate & Valko) for each time in ``t``.

    With r = 2M/(5t) and theta_j = j pi / M (j = 0..M-1): s_0 = r, s_j = r theta_j
    (cot theta_j + i), weights gamma_0 = 1/2, gamma_j = 1 + i theta_j (1 + cot^2 theta_j)
    - i cot theta_j, and f(t) ~= (r/M) Re sum_j gamma_j e^{t s_j} F(s_j).

    Parameters
    ----------
    t : array_like, shape (T,)
        Positive times.
    M : int
        Number of nodes (16..64; 32 is ~1e-10 accurate in float64 for smooth transforms).
    full : bool
        Also return the lower-half nodes, see :class:`TalbotNodes`.
    """
    t_arr = np.atleast_1d(check_array(t, "t", ndim=(0, 1), positive=True))
    M = check_int(M, "M", lo=4, hi=200)
    r = 2.0 * M / (5.0 * t_arr)
    theta = np.arange(1, M) * np.pi / M
    cot = 1.0 / np.tan(theta)
    unit_s = np.concatenate([[1.0 + 0j], theta * (cot + 1j)])
    gam = np.concatenate([[0.5 + 0j], 1.0 + 1j * theta * (1.0 + cot**2) - 1j * cot])
    if full:
        unit_s = np.concatenate([unit_s, np.conj(unit_s[1:])])
        gam = np.concatenate([[0.5 + 0j], 0.5 * gam[1:], 0.5 * np.conj(gam[1:])])
    s = r[:, None] * unit_s[None, :]
    w = np.broadcast_to(gam, s.shape).copy()
    return TalbotNodes(t=t_arr, s=s, weights=w, scale=r / M, M=M, full=full)


def talbot_sum(nodes: TalbotNodes, values: np.ndarray) -> np.ndarray:
    """Apply the Talbot quadrature to transform values already evaluated at ``nodes.s``.

    ``values`` has shape (T, J, *extra) where (T, J) = nodes.s.shape; returns (T, *extra)
    (real for an upper-half node set, complex for a full one).
    """
    v = np.asarray(values)
    if v.shape[:2] != nodes.s.shape:
        fail("values", f"of leading shape {nodes.s.shape}", v)
    extra = v.ndim - 2
    e = (nodes.weights * np.exp(nodes.t[:, None] * nodes.s)).reshape(nodes.s.shape + (1,) * extra)
    total = np.sum(e * v, axis=1) * nodes.scale.reshape((-1,) + (1,) * extra)
    return total if nodes.full else total.real


@dataclass(frozen=True, kw_only=True)
class LaplaceInversion(SolverResult):
    """f(t) from its Laplace transform.

    Attributes
    ----------
    values : ndarray, shape (T, *extra)
        f at each time (extra axes are whatever ``F`` returns beyond the node axes).
    t : ndarray, shape (T,)
    M : int
        Nodes used for ``values``.
    error_estimate : ndarray, shape (T,)
        max |f_M - f_{M+8}| over the extra axes at each time (NaN when not checked).

    ``residual`` is max_t error_estimate / (atol + rtol |f(t)|): <= 1 when converged.
    """

    values: np.ndarray
    t: np.ndarray
    M: int
    error_estimate: np.ndarray


def invert_laplace(
    F: Callable[[np.ndarray], np.ndarray],
    t,
    *,
    M: int = 32,
    check: bool = True,
    rtol: float = 1e-6,
    atol: float | None = None,
) -> LaplaceInversion:
    """Inverse Laplace transform by the fixed Talbot contour, vectorised over t.

    Parameters
    ----------
    F : callable
        ``F(s)`` for a complex array ``s`` of shape (T, J) returns an array of shape
        (T, J, *extra). F must be analytic off the negative real axis (singularities on
        (-inf, 0] only) and conjugate-symmetric, F(conj s) = conj F(s).
    t : array_like, shape (T,)
        Positive times.
    M : int
        Number of contour nodes.
    check : bool
        Also invert with M + 8 nodes; the difference is ``error_estimate`` and the result
        is ``converged`` when ``error_estimate <= atol + rtol * |f(t)|`` at every time.
        (The M + 8 result carries more round-off, so this over-estimates the error of the
        M-node result; Talbot's error is absolute, ~1e-11 of the transform's scale at
        M = 32, so a decaying f cannot be resolved relatively below that floor.)
    rtol : float
        Relative accuracy required by ``check``.
    atol : float, optional
        Absolute accuracy required by ``check``; default 1e-9 * max |f|.

    Returns
    -------
    LaplaceInversion
    """
    nodes = talbot_nodes(t, M)
    rtol = check_real(rtol, "rtol", lo=0, lo_closed=False)
    vals = talbot_sum(nodes, F(nodes.s))
    finite = bool(np.all(np.isfinite(vals)))
    if not check:
        # a fixed-order quadrature: a closed form (iterations = M nodes, no residual)
        message = "not checked (fixed-order Talbot quadrature)" if finite else "Talbot sum is not finite"
        if not finite:
            warn_not_converged("invert_laplace", message)
        return LaplaceInversion(
            values=vals, t=nodes.t, M=M, error_estimate=np.full(nodes.t.shape, np.nan),
            converged=finite, status="closed_form" if finite else "diverged", iterations=M,
            residual=float("nan"), message=message,
        )
    nodes2 = talbot_nodes(t, M + 8)
    vals2 = talbot_sum(nodes2, F(nodes2.s))
    diff = np.abs(vals - vals2).reshape(len(nodes.t), -1).max(axis=1)
    size = np.abs(vals2).reshape(len(nodes.t), -1).max(axis=1)
    atol = 1e-9 * float(np.max(size)) if atol is None else check_real(atol, "atol", lo=0)
    # residual in units of the allowed error (<= 1 means within atol + rtol |f|)
    ratio = diff / np.maximum(atol + rtol * size, 1e-300)
    residual = float(np.max(ratio)) if ratio.size else 0.0
    converged = bool(finite and residual <= 1.0)
    message = "converged" if converged else (
        f"Talbot inversion M={M} vs M={M + 8} differ by {residual:.3g} times the allowed atol + rtol|f|"
    )
    if not finite:
        message = "Talbot sum is not finite"
    if not converged:
        warn_not_converged("invert_laplace", message)
    return LaplaceInversion(values=vals, t=nodes.t, M=M, error_estimate=diff,
                            converged=converged, status=None if finite else "diverged", iterations=M + 8,
                            residual=residual, message=message)
