"""Bulk and outlier singular values of a hidden weight matrix: random bulk plus a learned spike.

The picture of Lauditi, Pehlevan & Bordelon, "Spectral Dynamics in Deep Networks: Feature
Learning, Outlier Escape, and Learning Rate Transfer": a trained hidden weight, normalised,

    W(t) / sqrt(N) = X + Delta,   X = W(0) / sqrt(N) (random bulk),   Delta = sum_i theta_i u_i v_i^T (low rank)

has a bulk of singular values following the Marchenko-Pastur law of X and outliers created by the
spike. In muP the spike strengths theta_i are O(1) at every width (the update of the hidden
weight is O(gamma0 lr t) in operator norm), so the outliers are width-independent; in the NTK
parameterization theta_i ~ N^-1/2 falls under the BBP threshold and the top singular value sinks
to the bulk edge.

* :func:`bulk_edges` - the Marchenko-Pastur edges of the singular values of X.
* :func:`mp_resolvent` - ``g(w) = tr (w - X X^T)^-1 / n`` and ``gt(w) = tr (w - X^T X)^-1 / m``.
* :func:`outlier_positions` - outliers from the rank-one secular equation with the resolvent of
  the bulk evaluated by free probability, optionally with the spike's dependence on the bulk
  (the overlap ``kappa = u^T X v``, which in trained networks is far from zero; see the function).
* :func:`secular_outliers` - the exact finite-N secular equation with given X, U, S, V (the
  singular values of X + U S V^T above those of X).

What is not here: the two-level DMFT that would predict theta and kappa themselves at infinite
width from the training dynamics (the bulk-level DMFT fields feed the spike, whose overlaps with the
bulk's resolvent need the single-site measure). The library takes theta and kappa from a
simulated network and predicts the outlier they produce.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_MAGNITUDE, check_array, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged

__all__ = ["OutlierResult", "SecularResult", "bulk_edges", "mp_resolvent", "outlier_positions", "secular_outliers",
           "free_outlier_closed_form"]


def _shape(n_rows, n_cols, variance):
    n = check_int(n_rows, "n_rows", lo=1, hi=10**9)
    m = check_int(n_cols, "n_cols", lo=1, hi=10**9)
    v = check_real(variance, "variance", lo=0.0, lo_closed=False)
    return n, m, v


def _canonical(n, m, v):
    """(c, scale) with c = min/max aspect <= 1 and X = scale * X', X' of BGN form (entries 1/long side)."""
    if n <= m:
        return n / m, np.sqrt(v)
    return m / n, np.sqrt(v * n / m)


def bulk_edges(n_rows: int, n_cols: int, variance: float = 1.0) -> tuple[float, float]:
    """Edges of the singular values of an ``n_rows x n_cols`` matrix with i.i.d. entries of variance
    ``variance / n_cols`` (e.g. ``W(0) / sqrt(N)``): the Marchenko-Pastur law.

    Equation (eq:spectral.mp_edge): ``s_pm = sqrt(variance) |1 pm sqrt(n_rows / n_cols)|``

    Square matrices: ``[0, 2 sqrt(variance)]`` (the quarter-circle law). Returns ``(lower, upper)``.
    """
    n, m, v = _shape(n_rows, n_cols, variance)
    r = np.sqrt(n / m)
    return float(np.sqrt(v) * abs(1.0 - r)), float(np.sqrt(v) * (1.0 + r))


def mp_resolvent(w, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised traces of the resolvents of the Marchenko-Pastur law, for real ``w`` above the bulk.

    For X of shape n x m with entries of variance 1/m and ``aspect = c = n/m`` (any c > 0):

    Equation (eq:spectral.mp_resolvent): ``c w g^2 - (w + c - 1) g + 1 = 0,  g(w) = tr (w - X X^T)^-1 / n,
        gt(w) = tr (w - X^T X)^-1 / m = c g(w) + (1 - c) / w``

    (the root with ``g ~ 1/w`` at large w). ``w`` must exceed ``(1 + sqrt(c))^2``. Returns ``(g, gt)``.
    """
    c = check_real(aspect, "aspect", lo=0.0, lo_closed=False)
    w = check_array(w, "w", max_abs=MAX_MAGNITUDE)
    if np.any(w <= (1 + np.sqrt(c)) ** 2):
        fail("w", f"above the bulk edge (1 + sqrt(aspect))^2 = {(1 + np.sqrt(c)) ** 2:g}", w)
    d = w - 1 - c
    disc = np.abs(d) * np.sqrt(np.maximum(1.0 - 4 * c / d**2, 0.0))   # sqrt(d^2 - 4c) without overflow
    g = 2.0 / ((w + c - 1) + disc)   # = ((w + c - 1) - disc) / (2 c w), without the cancellation
    return g, c * g + (1 - c) / w


@dataclass(frozen=True, kw_only=True)
class OutlierResult(SolverResult):
    """Predicted outlier singular values.

    Attributes
    ----------
    outliers : ndarray        predicted singular value per spike; the bulk edge where the spike is
                              below its threshold (no outlier)
    separated : ndarray bool  spike above threshold (an outlier exists)
    thresholds : ndarray      spike strength at which each outlier leaves the bulk edge
    edge : float              upper bulk edge
    """

    outliers: np.ndarray
    separated: np.ndarray
    thresholds: np.ndarray
    edge: float


def _secular_terms(z, c, kappa):
    """(b, z sqrt(a ct)) of the rank-one secular equation 1/theta = b + z sqrt(a ct) (canonical units)."""
    g, gt = mp_resolvent(z * z, c)
    q = kappa / c
    b = q * (z * z * gt - 1.0)
    a = q * q * (z * z * gt - 1.0) + (1.0 - q * q * c) * g
    return b, z * np.sqrt(np.maximum(a * gt, 0.0))


def outlier_positions(spike, n_rows: int, n_cols: int, variance: float = 1.0, overlap=0.0, *,
                      tol: float = 1e-12, max_iter: int = 200) -> OutlierResult:
    """Outlier singular values of ``X + sum_i theta_i u_i v_i^T`` from the rank-one secular equation.

    X is ``n_rows x n_cols`` with i.i.d. entries of variance ``variance / n_cols`` (the init of a
    hidden weight, ``W(0) / sqrt(N)``), ``spike`` the strengths theta_i (unit u_i, v_i), ``overlap``
    kappa_i = u_i^T X v_i. A singular value z above the bulk solves ``det([[z a, b - 1/theta],
    [b - 1/theta, z c]]) = 0`` with ``a = u^T (z^2 - X X^T)^-1 u``, ``c = v^T (z^2 - X^T X)^-1 v``,
    ``b = u^T (z^2 - X X^T)^-1 X v``. With v free of X and u = (kappa/r) X v + (a part free of X),
    r = n_rows/n_cols (the spike of a trained layer: v the layer's input features, u the backpropagated
    signal, a function of the layer's output ``X v``), free probability gives, in units where the
    variance is 1:

    Equation (eq:spectral.secular): ``1/theta = b(z) + z sqrt(a(z) gt(z^2)),  b = q (z^2 gt - 1),
        a = q^2 (z^2 gt - 1) + (1 - q^2 r) g(z^2),  q = kappa / r``

    with g, gt of :func:`mp_resolvent`. ``overlap = 0`` is the BBP / Benaych-Georges-Nadakuditi
    equation ``D(z) = z^2 g gt = 1/theta^2`` (closed form in :func:`free_outlier_closed_form`).
    Several spikes are treated one at a time (exact for independent spikes; an approximation for
    dependent ones). The root is bracketed between the edge and an upper bound and found by
    bisection, which assumes one crossing (F decreasing: true for kappa >= 0; checked against
    sampled matrices at kappa = -0.4 too); ``status`` is ``converged`` when every bracket shrank
    below ``tol``. In trained muP networks kappa is about 0.6-0.75 and the free equation
    underestimates the outlier by 10-20%.
    """
    n, m, v = _shape(n_rows, n_cols, variance)
    theta = check_array(spike, "spike", ndim=1, nonnegative=True, max_abs=1e50)
    try:
        kappa = np.broadcast_to(check_array(overlap, "overlap"), theta.shape) / np.sqrt(v)
    except ValueError as e:
        if "`overlap`" in str(e):
            raise
        fail("overlap", f"a number or an array of the shape of spike {theta.shape}", overlap)
    c, scale = n / m, np.sqrt(v)
    if not np.all(np.isfinite(kappa)) or np.any(np.abs(kappa) >= np.sqrt(c)):
        fail("overlap", f"finite with |overlap| < sqrt(variance n_rows / n_cols) = {scale * np.sqrt(c):g}", overlap)
    tol = check_real(tol, "tol", lo=0.0, lo_closed=False)
    max_iter = check_int(max_iter, "max_iter", lo=1, hi=10_000)
    th_c = theta / scale
    edge = 1.0 + np.sqrt(c)

    def F(z, k):
        b, r = _secular_terms(z, c, k)
        return b + r   # outlier where F = 1/theta; F falls to 0 as z grows

    z_lo = edge * (1 + 1e-14)
    out, sep, thr = np.full(th_c.shape, edge), np.zeros(th_c.shape, bool), np.zeros(th_c.shape)
    worst, iters = 0.0, 0
    for i, (t, k) in enumerate(zip(th_c, kappa, strict=True)):
        f_edge = F(z_lo, k)
        thr[i] = 1.0 / f_edge if f_edge > 0 else np.inf
        if t <= thr[i]:
            continue
        lo, hi = z_lo, edge + t + 1.0
        while F(hi, k) > 1.0 / t:   # the upper bracket: F ~ (1 + ...) / z at large z
            hi *= 2.0
        j = 0
        while hi - lo > tol * hi and j < max_iter:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if F(mid, k) > 1.0 / t else (lo, mid)
            j += 1
        iters, worst = max(iters, j), max(worst, (hi - lo) / hi)
        out[i], sep[i] = 0.5 * (lo + hi), True
    ok = worst <= tol
    msg = "bisection met tol on every spike" if ok else f"bisection hit max_iter={max_iter} (bracket {worst:.2e})"
    if not ok:
        warn_not_converged("outlier_positions", msg)
    return OutlierResult(converged=ok, iterations=iters, residual=float(worst), message=msg, outliers=scale * out,
                         separated=sep, thresholds=scale * thr, edge=float(scale * edge))


def free_outlier_closed_form(spike, n_rows: int, n_cols: int, variance: float = 1.0) -> np.ndarray:
    """Outliers of ``X + theta u v^T`` with u, v independent of X (Benaych-Georges & Nadakuditi form).

    Equation (eq:spectral.bbp): ``z = sqrt((1 + theta^2)(c + theta^2)) / theta  for theta > c^(1/4)``

    in units where X is min x max with entries of variance 1 / max(n_rows, n_cols) (converted here from
    ``variance / n_cols``), c = min/max aspect. Spikes under the threshold return the bulk edge. An
    independent route to the ``overlap = 0`` case of :func:`outlier_positions`.
    """
    n, m, v = _shape(n_rows, n_cols, variance)
    theta = check_array(spike, "spike", ndim=1, nonnegative=True, max_abs=1e50)
    c, scale = _canonical(n, m, v)
    t = np.maximum(theta / scale, c**0.25)   # under the threshold: the edge (z(c^1/4) = 1 + sqrt(c))
    return scale * np.sqrt(1 + 1 / t**2) * np.sqrt(c + t**2)


@dataclass(frozen=True, kw_only=True)
class SecularResult(SolverResult):
    """Singular values of X + U S V^T above the largest singular value of X, from the secular equation.

    Attributes
    ----------
    outliers : ndarray   the roots found, descending
    top_bulk : float     largest singular value of X
    """

    outliers: np.ndarray
    top_bulk: float


def secular_outliers(X, U, S, V, *, n_grid: int = 2000, tol: float = 1e-12) -> SecularResult:
    """Exact finite-size secular equation: the singular values z > s_max(X) of ``M = X + U diag(S) V^T``.

    Equation (eq:spectral.secular_exact): ``det( [[z U^T R U, U^T R X V], [V^T X^T R U, z V^T Rt V]]
        - [[0, S^-1], [S^-1, 0]] ) = 0,  R = (z^2 - X X^T)^-1, Rt = (z^2 - X^T X)^-1``

    (X: n x m, U: n x k, V: m x k, S: k positive strengths). The determinant is evaluated on a grid
    of ``n_grid`` points between s_max(X) and ``s_max(X) + sum S`` (no root lies beyond) and each sign
    change refined by bisection to relative ``tol``. A double root (no sign change) would be missed;
    ``residual`` is the largest final bracket.
    """
    X = check_array(X, "X", ndim=2, finite=True)
    n, m = X.shape
    U = check_array(U, "U", ndim=2, finite=True)
    V = check_array(V, "V", ndim=2, finite=True)
    S = check_array(S, "S", ndim=1, max_abs=1e50)
    k = S.size
    if U.shape != (n, k) or V.shape != (m, k):
        fail("U, V", f"shapes ({n}, {k}) and ({m}, {k}) for X of shape {X.shape} and {k} strengths",
             (U.shape, V.shape))
    if np.any(S <= 0):
        fail("S", "positive strengths", S)
    n_grid = check_int(n_grid, "n_grid", lo=10, hi=10**6)
    tol = check_real(tol, "tol", lo=0.0, lo_closed=False)
    P, sig, Qt = np.linalg.svd(X, full_matrices=True)
    s_full = np.zeros(n)
    s_full[:sig.size] = sig
    Up, Vq = P.T @ U, Qt @ V                     # spike factors in X's singular bases
    t_full = np.zeros(m)
    t_full[:sig.size] = sig
    Sinv = np.diag(1.0 / S)

    def det(z):
        r, rt = 1.0 / (z * z - s_full**2), 1.0 / (z * z - t_full**2)
        A = z * (Up.T * r) @ Up
        C = z * (Vq.T * rt) @ Vq
        B = (Up[:sig.size].T * (r[:sig.size] * sig)) @ Vq[:sig.size]
        return np.linalg.det(np.block([[A, B - Sinv], [B.T - Sinv, C]]))

    top = float(sig[0]) if sig.size else 0.0
    grid = top + (S.sum() + 1e-12) * (np.geomspace(1e-9, 1.0, n_grid))
    vals = np.array([det(z) for z in grid])
    roots, worst, iters = [], 0.0, 0
    for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]:
        lo, hi, flo = grid[i], grid[i + 1], vals[i]
        j = 0
        while hi - lo > tol * hi and j < 200:
            mid = 0.5 * (lo + hi)
            fm = det(mid)
            lo, hi, flo = (mid, hi, fm) if np.sign(fm) == np.sign(flo) else (lo, mid, flo)
            j += 1
        roots.append(0.5 * (lo + hi))
        worst, iters = max(worst, (hi - lo) / hi), max(iters, j)
    ok = worst <= tol
    msg = f"{len(roots)} roots above s_max(X)" if ok else f"bisection stopped at bracket {worst:.2e}"
    if not ok:
        warn_not_converged("secular_outliers", msg)
    return SecularResult(converged=ok, iterations=iters, residual=float(worst), message=msg,
                         outliers=np.sort(np.array(roots))[::-1], top_bulk=top)
