"""In-context linear regression with deep linear attention: risk of depth-L in-context GD.

Bordelon, Letey & Pehlevan, "Theory of Scaling Laws for In-Context Regression: Depth, Width,
Context and Time". Each context holds P pairs ``(x_i, y_i)``, ``y_i = beta . x_i / sqrt(D) +
eps_i`` (``eps ~ N(0, noise)``), with a fresh task ``beta ~ N(0, I_D)`` per context, and a query
``x_*``. A depth-L linear-attention network in the gradient-descent form (keys/queries read the
x-part of the tokens, values write the y-part; the alignment assumptions of the paper's reduced
model) predicts

    y_hat = x_*^T (I - p(Sigma_hat)) Sigma_hat^{-1} X^T y / (P sqrt(D)),     Sigma_hat = X^T X / P,

with ``p(s) = prod_l (1 - Gamma_l s)`` a degree-L polynomial, ``p(0) = 1`` (one step of
preconditioned GD per layer). Two models are covered:

* **tied** (the paper's recurrent reduced-Gamma model, every layer the same Gamma):
  ``p(s) = (1 - eta s)^L``, one step size;
* **untied** (a different Gamma_l per layer): any real-rooted degree-L polynomial; the optimum
  over all degree-L polynomials with ``p(0) = 1`` is computed (it has real roots for the cases
  we checked, so it is realisable).

ISO covariates (``x ~ N(0, I_D)``) in the proportional limit ``P, D -> inf`` with context ratio
``alpha = P / D``: the spectrum of Sigma_hat tends to the Marchenko-Pastur law ``mu`` of ratio
``1/alpha`` (with an atom of mass ``1 - alpha`` at 0 when ``alpha < 1``) and the ICL risk
``E[(y_hat - beta . x_*/sqrt(D))^2]`` (irreducible noise excluded) is

    R(p) = int p(s)^2 dmu(s) + (noise / alpha) int (1 - p(s))^2 / s dmu(s).

We integrate with Gauss quadrature built from the exact Jacobi matrix of the MP law
(free-Poisson recurrence ``a_0 = 1, a_n = 1 + 1/alpha, b_n^2 = 1/alpha``), exact for the
polynomial integrands. Noiseless optimum: ``R*_L = 1 / sum_{j<=L} pi_j(0)^2`` (Christoffel
function at 0, ``pi_j`` orthonormal for mu). ``L -> inf`` limit: the Bayes-optimal ridge
predictor with ``lambda = noise / alpha``, ``R_inf = kappa / (1 + kappa)`` with
``kappa = lambda + (1/alpha) kappa / (1 + kappa)``.

RRS covariates (``Sigma_c = O_c Lambda O_c^T``, fresh Haar rotation per context) at infinite
context: ``Sigma_hat = Sigma_c`` and a fixed preconditioner cannot undo the rotation, so the
best layers are multiples of the identity and the normalised risk is

    R(p) = sum_k lam_k p(lam_k)^2 / sum_k lam_k,

minimised over the same polynomial classes (Lanczos on the discrete spectral measure for the
untied optimum). Depth keeps helping at infinite context; for ``lam_k ~ k^{-nu}`` the tied
(GD) risk decays as ``L^{-(1 - 1/nu)}``.

Confidence: the reduction of the trained network to "optimal polynomial of Sigma_hat" is the
standard construction (a heuristic: that training reaches it is checked by the claims in
:mod:`lmech.claims.icl`); the MP risk formula is exact in the proportional limit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_choice, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged

__all__ = [
    "mp_quadrature",
    "mp_moments",
    "ICLRiskResult",
    "icl_risk",
    "icl_bayes_risk",
    "polynomial_risk_iso",
    "rrs_risk",
    "power_law_exponent",
]


# --------------------------------------------------------------------------- MP law
def _mp_jacobi(ratio: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Recurrence coefficients (a_0..a_{n-1}, b_1..b_{n-1}) of the MP law with ratio D/P."""
    a = np.full(n, 1.0 + ratio)
    a[0] = 1.0
    b = np.full(max(n - 1, 0), np.sqrt(ratio))
    return a, b


def mp_quadrature(ratio: float, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature of the Marchenko-Pastur law (unit variance entries, ratio D/P).

    Exact for polynomials of degree <= 2 n_nodes - 1 (Golub-Welsch on the exact Jacobi matrix).

    Parameters
    ----------
    ratio : float
        ``D / P = 1 / alpha`` (> 0); for ratio > 1 the law has an atom of mass ``1 - 1/ratio``
        at 0, which the quadrature integrates exactly.
    n_nodes : int

    Returns
    -------
    nodes, weights : ndarray, shape (n_nodes,)
        Nodes (>= 0 up to round-off) and positive weights summing to 1.
    """
    g = check_real(ratio, "ratio", lo=0.0, lo_closed=False)
    n = check_int(n_nodes, "n_nodes", lo=1, hi=2000)
    a, b = _mp_jacobi(g, n)
    nodes, vecs = linalg.eigh_tridiagonal(a, b)
    weights = vecs[0] ** 2
    return np.clip(nodes, 0.0, None), weights / weights.sum()


def mp_moments(ratio: float, k_max: int) -> np.ndarray:
    """Moments ``m_k = int s^k dmu``, k = 0..k_max, via Narayana polynomials (closed form).

    ``m_k = sum_{j=1}^{k} N(k, j) ratio^{j-1}``, ``N(k, j) = binom(k, j) binom(k, j-1) / k``.
    """
    from math import comb

    g = check_real(ratio, "ratio", lo=0.0, lo_closed=False)
    K = check_int(k_max, "k_max", lo=0, hi=MAX_SIZE)
    out = np.ones(K + 1)
    try:
        for k in range(1, K + 1):
            out[k] = sum(comb(k, j) * comb(k, j - 1) / k * g ** (j - 1) for j in range(1, k + 1))
    except OverflowError:
        out[-1] = np.inf
    if not np.all(np.isfinite(out)):
        fail("ratio", f"small enough that the moments up to k_max = {K} fit in float64", ratio)
    return out


def _orthonormal_at(a: np.ndarray, b: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """Orthonormal polynomials pi_0..pi_{n-1} at points x from the three-term recurrence."""
    out = np.empty((n, x.size))
    out[0] = 1.0
    if n > 1:
        out[1] = (x - a[0]) * out[0] / b[0]
    for j in range(1, n - 1):
        out[j + 1] = ((x - a[j]) * out[j] - b[j - 1] * out[j - 1]) / b[j]
    return out


# --------------------------------------------------------------------------- polynomial optimum
def _optimal_poly_on_measure(nodes, weights, depth, noise_coef):
    """Minimise sum_i w_i [(1 - s_i q(s_i))^2 + noise_coef s_i q(s_i)^2] over deg q < depth.

    Returns (risk, values of p at nodes, coefficients in a Legendre-like scaled basis, roots of p).
    """
    smax = float(nodes.max())
    # q in a Chebyshev basis on [0, smax]: well conditioned for moderate depth
    u = 2 * nodes / smax - 1
    V = np.polynomial.chebyshev.chebvander(u, depth - 1)  # (n, depth)
    sw = np.sqrt(weights)
    rows = [sw[:, None] * nodes[:, None] * V]
    rhs = [sw]
    if noise_coef > 0:
        rows.append(np.sqrt(noise_coef * weights * nodes)[:, None] * V)
        rhs.append(np.zeros_like(sw))
    Amat = np.vstack(rows)
    bvec = np.concatenate(rhs)
    c, *_ = np.linalg.lstsq(Amat, bvec, rcond=None)
    qv = V @ c
    p = 1 - nodes * qv
    risk = float(np.sum(weights * (p**2 + noise_coef * nodes * qv**2)))
    # roots of p(s) = 1 - s q(s): power coefficients of q in s
    q_cheb = np.polynomial.Chebyshev(c, domain=[0, smax])
    q_pow = q_cheb.convert(kind=np.polynomial.Polynomial)
    p_pow = np.polynomial.Polynomial([1.0]) - np.polynomial.Polynomial([0.0, 1.0]) * q_pow
    roots = p_pow.roots()
    return risk, roots


def _steps_risk(nodes, weights, steps, noise_coef):
    """Risk of p(s) = prod_l (1 - steps_l s) on a quadrature (q = (1 - p)/s, exact at s = 0)."""
    f = 1 - np.outer(steps, nodes)  # (L, n)
    p = np.prod(f, axis=0)
    # q(s) = (1 - p(s))/s = sum_l steps_l prod_{k<l} (1 - steps_k s)   (telescoping, no division)
    pref = np.vstack([np.ones(nodes.size), np.cumprod(f, axis=0)[:-1]])
    q = steps @ pref
    return float(np.sum(weights * (p**2 + noise_coef * nodes * q**2)))


def _optimal_real_rooted(nodes, weights, depth, noise_coef):
    """Optimum over real step sizes (what L untied GD-form layers can realise).

    The unconstrained degree-L optimum is used when its roots are real; otherwise the real-rooted
    optimum is found by BFGS from the real parts of the unconstrained steps and from the tied
    optimum, keeping the best. Returns (risk, steps, whether an optimiser was needed).
    """
    r_free, roots = _optimal_poly_on_measure(nodes, weights, depth, noise_coef)
    steps = 1.0 / roots
    if np.all(np.abs(np.imag(steps)) <= 1e-9 * np.max(np.abs(steps))):
        return r_free, np.sort(np.real(steps)), False
    r_tied, eta, _ = _optimal_tied(nodes, weights, depth, noise_coef)
    # Chebyshev steps on the support of the measure (minimax polynomial with p(0) = 1)
    lo = max(float(np.min(nodes[nodes > 1e-12])) if np.any(nodes > 1e-12) else 1e-3, 1e-6)
    hi = float(nodes.max())
    k = np.arange(depth)
    cheb_roots = 0.5 * (hi + lo) + 0.5 * (hi - lo) * np.cos(np.pi * (k + 0.5) / depth)
    starts = [np.sort(np.real(steps)), np.sort(np.abs(steps)), np.sort(1.0 / cheb_roots),
              np.full(depth, eta) * (1 + 0.05 * np.linspace(-1, 1, depth))]
    best_r, best_g = r_tied, np.full(depth, eta)
    for g0 in starts:
        res = optimize.minimize(lambda g: _steps_risk(nodes, weights, g, noise_coef), g0, method="BFGS",
                                options={"gtol": 1e-12, "maxiter": 2000})
        if res.fun < best_r:
            best_r, best_g = float(res.fun), np.sort(res.x)
    return best_r, best_g, True


def _tied_risk(nodes, weights, depth, noise_coef, eta):
    z = 1 - eta * nodes
    p = z**depth
    # (1 - p)^2 / s = s q^2 with q = (1 - z^L)/s (limit eta L at s = 0); for small eta s use
    # expm1/log1p to avoid cancellation
    small = np.abs(eta * nodes) < 0.5
    with np.errstate(divide="ignore", invalid="ignore"):
        q_small = -np.expm1(depth * np.log1p(-eta * np.where(small, nodes, 0.0))) / np.where(nodes > 0, nodes, 1.0)
        q_big = (1 - p) / np.where(nodes > 0, nodes, 1.0)
    q = np.where(small, q_small, q_big)
    q = np.where(nodes > 0, q, eta * depth)
    return float(np.sum(weights * (p**2 + noise_coef * nodes * q**2)))


def _optimal_tied(nodes, weights, depth, noise_coef):
    smax = float(nodes.max())
    grid = np.linspace(1e-3, 2.5, 150) / smax
    vals = np.array([_tied_risk(nodes, weights, depth, noise_coef, e) for e in grid])
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(lambda e: _tied_risk(nodes, weights, depth, noise_coef, e),
                                   bounds=(lo, hi), method="bounded", options={"xatol": 1e-12 / smax})
    return float(res.fun), float(res.x), bool(res.success)


@dataclass(frozen=True, kw_only=True)
class ICLRiskResult(SolverResult):
    """ICL risk on a grid of depths (rows) and context ratios (columns).

    Attributes
    ----------
    risk : ndarray, shape (n_depths, n_alphas)
        ICL risk (irreducible label noise excluded). For ``setting="rrs"`` there is one
        column (infinite context) and the risk is normalised by that of the zero predictor.
    depth : ndarray of int, shape (n_depths,)
    alpha : ndarray, shape (n_alphas,)
        Context ratio P / D (``inf`` for RRS).
    step_sizes : list of ndarray
        Per (depth, alpha) in row-major order: the layer step sizes ``Gamma_l`` (reciprocal
        roots of p; complex entries would mean the optimum is not realisable by real layers).
        For the tied model the single optimal ``eta``.
    model : str
        "tied" or "untied".
    """

    risk: np.ndarray
    depth: np.ndarray
    alpha: np.ndarray
    step_sizes: list
    model: str


#: Largest depth accepted by icl_risk / rrs_risk: the optimal polynomial of degree ``depth``
#: is fitted on a Marchenko-Pastur quadrature of ``depth + 2`` nodes (capped at 2000). The cost
#: grows with depth (icl_risk: ~3 s per alpha at depth 32, ~11 s at 64).
MAX_DEPTH = 1000


#: Largest label-noise variance accepted (beyond it the risk formulas overflow float64; real
#: noise variances are O(1)).
_MAX_NOISE = 1e100


#: Smallest context ratio alpha accepted: the quadrature's aspect ratio is 1 / alpha.
_MIN_ALPHA = 1e-8


def _check_alpha(alpha) -> np.ndarray:
    a = check_array(alpha, "alpha", ndim=(0, 1), positive=True, max_abs=MAX_MAGNITUDE)
    if a.size and np.min(a) < _MIN_ALPHA:
        fail("alpha", f"at least {_MIN_ALPHA:g} (1 / alpha is the Marchenko-Pastur ratio)", alpha)
    return a


def _check_depths(depth) -> np.ndarray:
    if depth is None or isinstance(depth, (str, bytes)):
        fail("depth", "a positive integer or 1-d array of positive integers", depth, TypeError)
    try:
        d = np.atleast_1d(np.asarray(depth, dtype=float))
    except (TypeError, ValueError, OverflowError):
        fail("depth", "a positive integer or 1-d array of positive integers", depth, TypeError)
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)) or not np.all(d == np.round(d)):
        fail("depth", "a positive integer or 1-d array of positive integers", depth, TypeError)
    if np.any(d < 1) or np.any(d > MAX_DEPTH):
        fail("depth", f"integers in [1, {MAX_DEPTH}] (cost and round-off grow with depth; far above real use)", depth)
    return d.astype(int)


def icl_risk(alpha, depth, *, noise: float = 0.0, model: str = "untied") -> ICLRiskResult:
    """ICL risk of depth-L linear attention on ISO covariates in the proportional limit.

    Equation (eq:icl.risk): ``R(p) = int p(s)^2 dmu(s) + (noise / alpha) int (1 - p(s))^2 / s dmu(s),
        p(s) = prod_l (1 - Gamma_l s),  mu = Marchenko-Pastur law of ratio 1/alpha``

    Equation (eq:icl.noiseless_optimum): ``R*_L = 1 / sum_{j<=L} pi_j(0)^2``

    Parameters
    ----------
    alpha : float or array_like, shape (n_alphas,)
        Context ratio ``P / D`` (> 0).
    depth : int or array_like of int, shape (n_depths,)
        Number of attention layers L, 1 <= L <= MAX_DEPTH (1000).
    noise : float
        Label-noise variance sigma^2 (>= 0) of the in-context examples.
    model : {"untied", "tied"}
        "untied": optimum over all degree-L polynomials with p(0) = 1 (one step size per
        layer). "tied": the paper's recurrent model, ``p(s) = (1 - eta s)^L`` with the optimal
        ``eta``.

    Returns
    -------
    ICLRiskResult
    """
    a = _check_alpha(alpha)
    a = np.atleast_1d(a)
    depths = _check_depths(depth)
    s2 = check_real(noise, "noise", lo=0.0, hi=_MAX_NOISE)
    check_choice(model, "model", ("untied", "tied"))
    risk = np.empty((len(depths), len(a)))
    steps: list = []
    ok = True
    iterative = model == "tied"
    for i, L in enumerate(depths):
        for j, al in enumerate(a):
            nodes, w = mp_quadrature(1.0 / al, int(L) + 2)
            coef = s2 / al
            if model == "untied":
                r, g, optimised = _optimal_real_rooted(nodes, w, int(L), coef)
                iterative |= optimised
                steps.append(g)
            else:
                r, eta, success = _optimal_tied(nodes, w, int(L), coef)
                ok &= success
                steps.append(np.array([eta]))
            risk[i, j] = r
    # closed form (Gauss quadrature + least squares) unless a step-size optimiser was needed
    status = ("converged" if ok else "max_iter") if iterative else "closed_form"
    message = {"converged": "step sizes optimised (no residual)", "closed_form": "closed form",
               "max_iter": "step-size optimisation did not converge for some (alpha, depth)"}[status]
    if not ok:
        warn_not_converged("icl_risk", message)
    return ICLRiskResult(risk=risk, depth=depths, alpha=a, step_sizes=steps, model=model,
                         converged=ok, status=status, iterations=len(depths) * len(a) if iterative else 0,
                         residual=float("nan"), message=message)


def polynomial_risk_iso(alpha: float, step_sizes, *, noise: float = 0.0) -> float:
    """ISO risk of the specific polynomial ``p(s) = prod_l (1 - step_sizes[l] s)``.

    Used to score a trained network's layer step sizes against the theory.
    """
    al = check_real(alpha, "alpha", lo=_MIN_ALPHA)
    g = check_array(step_sizes, "step_sizes", max_abs=MAX_MAGNITUDE, ndim=1, min_size=1)
    s2 = check_real(noise, "noise", lo=0.0, hi=_MAX_NOISE)
    nodes, w = mp_quadrature(1.0 / al, len(g) + 2)
    return _steps_risk(nodes, w, g, s2 / al)


def icl_bayes_risk(alpha, *, noise: float) -> np.ndarray:
    """L -> infinity limit of the untied risk: Bayes-optimal ridge with ``lambda = noise/alpha``.

    Equation (eq:icl.bayes): ``R_inf = kappa / (1 + kappa),
        kappa = lambda + (1/alpha) kappa / (1 + kappa),  lambda = noise / alpha``

    ``R = kappa / (1 + kappa)`` where ``kappa = lambda + (1/alpha) kappa / (1 + kappa)``
    (sample-covariance deterministic equivalent on the identity covariance). For ``noise = 0``
    this is ``max(0, 1 - alpha)`` (interpolation of the atom at zero).
    """
    a = np.atleast_1d(_check_alpha(alpha))
    s2 = check_real(noise, "noise", lo=0.0, hi=_MAX_NOISE)
    lam = s2 / a
    g = 1.0 / a
    # kappa^2 + kappa (1 - lam - g) - lam = 0, positive root (stable form)
    bq = 1 - lam - g
    disc = np.sqrt(bq * bq + 4 * lam)
    kappa = np.where(bq > 0, 2 * lam / np.where(bq > 0, bq + disc, 1.0), 0.5 * (disc - bq))
    return kappa / (1 + kappa)


# --------------------------------------------------------------------------- RRS, infinite context
def _lanczos(weights: np.ndarray, x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Jacobi coefficients (a_0..a_{n-1}, b_1..b_n) of the discrete measure sum_k w_k delta(x_k)."""
    q = np.sqrt(weights)
    Q = np.zeros((n + 1, x.size))
    Q[0] = q / np.linalg.norm(q)
    a = np.zeros(n)
    b = np.zeros(n)
    for j in range(n):
        z = x * Q[j]
        a[j] = Q[j] @ z
        z -= a[j] * Q[j]
        if j > 0:
            z -= b[j - 1] * Q[j - 1]
        # full re-orthogonalisation (twice is enough)
        for _ in range(2):
            z -= Q[: j + 1].T @ (Q[: j + 1] @ z)
        b[j] = np.linalg.norm(z)
        if b[j] <= 1e-300:
            return a[: j + 1], b[: j + 1]
        Q[j + 1] = z / b[j]
    return a, b


def rrs_risk(eigenvalues, depth, *, model: str = "untied") -> ICLRiskResult:
    """Normalised RRS risk at infinite context, ``min_p sum_k lam_k p(lam_k)^2 / sum_k lam_k``.

    Equation (eq:icl.rrs): ``R(p) = sum_k lam_k p(lam_k)^2 / sum_k lam_k``

    Parameters
    ----------
    eigenvalues : array_like, shape (D,)
        Spectrum ``Lambda`` of the per-context covariance (positive).
    depth : int or array_like of int
        Number of layers, 1 <= L <= MAX_DEPTH (1000).
    model : {"untied", "tied"}
        "untied": optimal degree-L polynomial, ``R* = 1 / sum_{j<=L} pi_j(0)^2`` with
        ``pi_j`` orthonormal for the measure ``w_k = lam_k / sum lam`` (Lanczos with full
        re-orthogonalisation). "tied": ``p(s) = (1 - eta s)^L`` with optimal eta.

    Returns
    -------
    ICLRiskResult  (``alpha = [inf]``; ``risk`` shape (n_depths, 1))
    """
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, positive=True, min_size=1)
    depths = _check_depths(depth)
    check_choice(model, "model", ("untied", "tied"))
    w = lam / lam.sum()
    risk = np.empty((len(depths), 1))
    steps: list = []
    ok = True
    if model == "untied":
        Lmax = int(depths.max())
        a, b = _lanczos(w, lam, Lmax + 1)
        n_avail = len(a)
        pis = _orthonormal_at(a, b, np.zeros(1), min(Lmax + 1, n_avail))[:, 0]
        for i, L in enumerate(depths):
            if L + 1 > n_avail:  # the measure has only n_avail points: p can vanish on all of them
                risk[i, 0] = 0.0
            else:
                risk[i, 0] = 1.0 / np.sum(pis[: L + 1] ** 2)
            steps.append(np.array([]))
    else:
        for i, L in enumerate(depths):
            r, eta, success = _optimal_tied(lam, w, int(L), 0.0)
            ok &= success
            risk[i, 0] = r
            steps.append(np.array([eta]))
    # untied: closed form (Lanczos); tied: a bounded 1-d step-size optimisation per depth
    status = "closed_form" if model == "untied" else ("converged" if ok else "max_iter")
    message = {"converged": "step sizes optimised (no residual)", "closed_form": "closed form",
               "max_iter": "step-size optimisation did not converge"}[status]
    if not np.all(np.isfinite(risk)):  # very deep polynomials lose precision in float64
        ok, status = False, "max_iter"
        message = ("the risk is not finite at some depth (the optimal polynomial of this degree loses float64 "
                   "precision); use smaller depths")
    if not ok:
        warn_not_converged("rrs_risk", message)
    return ICLRiskResult(risk=risk, depth=depths, alpha=np.array([np.inf]), step_sizes=steps, model=model,
                         converged=ok, status=status, iterations=0 if model == "untied" else len(depths),
                         residual=float("nan"), message=message)


def power_law_exponent(x, y) -> float:
    """Least-squares slope of log y against log x (the fitted scaling exponent, sign kept)."""
    xs = check_array(x, "x", ndim=1, positive=True, min_size=2)
    ys = check_array(y, "y", shape=(xs.shape[0],), positive=True)
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])
