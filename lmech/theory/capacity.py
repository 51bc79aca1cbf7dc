"""Capacity of group-invariant linear readouts: Cover's count with the fixed-space dimension.

Farrell, Bordelon, Trivedi & Pehlevan, "Capacity of Group-invariant Linear Readouts from
Equivariant Representations: How Many Objects can be Linearly Classified Under All Possible
Views?". P objects are points ``x_mu`` in R^N carrying a representation ``pi`` of a finite
group G; a dichotomy ``y`` of the objects is *invariantly separable* if one ``w`` satisfies
``y_mu w . pi(g) x_mu > 0`` for every object and every group element. Averaging a solution
over the group gives a G-invariant ``w``, so the question reduces to ordinary homogeneous
separability of the projections ``Pi_0 x_mu`` onto the fixed subspace of the representation,
whose dimension is the multiplicity of the trivial irrep,

    N_0 = dim Fix(G) = (1/|G|) sum_g tr pi(g).

For points in general position after projection, Cover's function-counting theorem gives the
number of invariantly separable dichotomies and their fraction,

    C_G(P) = 2 sum_{k=0}^{N_0 - 1} binom(P - 1, k),     f(P) = C_G(P) / 2^P,

so the capacity (where half of the dichotomies are separable) is P_c = 2 N_0. Equivalently
f(P) = Prob[Binomial(P - 1, 1/2) <= N_0 - 1] = I_{1/2}(P - N_0, N_0), a regularised
incomplete beta function, which we use to evaluate fractions stably for any P and to extend
f to real N_0 (used to estimate N_0 from measured fractions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from lmech._validation import MAX_SIZE, check_array, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged

__all__ = [
    "cover_count",
    "separable_fraction",
    "log_separable_fraction",
    "fixed_space_dim",
    "permutation_orbit_count",
    "FixedDimFit",
    "fit_fixed_space_dim",
    "cover_log_likelihood",
]


def cover_count(n_points: int, n_dims: int) -> int:
    """Exact number of homogeneously separable dichotomies of ``n_points`` in general position.

    Equation (eq:capacity.cover): ``C_G(P) = 2 sum_{k=0}^{N_0 - 1} binom(P - 1, k)``

    ``C(P, N_0) = 2 sum_{k<N_0} binom(P - 1, k)`` (Cover 1965), as a Python integer. With
    ``n_dims = dim Fix(G)`` it is the number of G-invariantly separable dichotomies of P
    objects (Farrell et al.).
    """
    P = check_int(n_points, "n_points", lo=1)
    N0 = check_int(n_dims, "n_dims", lo=0, hi=MAX_SIZE)
    return 2 * sum(math.comb(P - 1, k) for k in range(min(N0, P)))


def separable_fraction(n_points, n_dims) -> np.ndarray:
    """Fraction ``C(P, N_0) / 2^P`` of separable dichotomies, vectorised (float64).

    Equation (eq:capacity.fraction): ``f(P) = C_G(P) / 2^P = I_{1/2}(P - N_0, N_0),  capacity P_c = 2 N_0``

    Parameters
    ----------
    n_points : int or array_like of int
        Number of objects P (>= 1).
    n_dims : float or array_like
        Fixed-space dimension N_0 (>= 0); real values use the incomplete-beta continuation
        ``I_{1/2}(P - N_0, N_0)``, which equals the exact count at integers.

    Returns
    -------
    ndarray
        Broadcast of the inputs; 1 where ``P <= N_0``, 0 where ``N_0 = 0``.
    """
    P = check_array(n_points, "n_points", ndim=(0, 1), positive=True)
    if np.any(P != np.round(P)):
        fail("n_points", "integers", n_points)
    N0 = check_array(n_dims, "n_dims", ndim=(0, 1), nonnegative=True)
    P, N0 = np.broadcast_arrays(P, N0)
    out = np.ones(P.shape)
    small = P <= N0
    with np.errstate(all="ignore"):
        val = special.betainc(np.where(small, 1.0, P - N0), np.where(N0 > 0, N0, 1.0), 0.5)
    out = np.where(small, 1.0, val)
    out = np.where(N0 == 0, 0.0, out)
    return out


def log_separable_fraction(n_points, n_dims: int) -> np.ndarray:
    """Natural log of :func:`separable_fraction` for integer N_0, accurate for tiny fractions.

    ``log f = log 2 + logsumexp_{k < N_0} log binom(P - 1, k) - P log 2`` with log-binomials
    from ``gammaln``, so P in the millions (fractions far below the float range) is fine.
    """
    P = check_array(n_points, "n_points", ndim=(0, 1), positive=True)
    if np.any(P != np.round(P)):
        fail("n_points", "integers", n_points)
    N0 = check_int(n_dims, "n_dims", lo=1, hi=MAX_SIZE)
    Pv = np.atleast_1d(P)
    k = np.arange(N0)[None, :]
    n = Pv[:, None] - 1
    valid = k <= n
    logb = np.where(valid, special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(np.maximum(n - k, 0) + 1),
                    -np.inf)
    out = np.log(2.0) + special.logsumexp(logb, axis=1) - Pv * np.log(2.0)
    out = np.minimum(out, 0.0)
    return out.reshape(P.shape) if P.ndim else out[0]


def fixed_space_dim(representation, *, atol: float = 1e-8) -> int:
    """Dimension of the subspace fixed by a finite group: ``(1/|G|) sum_g tr pi(g)``.

    Equation (eq:capacity.fixed_dim): ``N_0 = dim Fix(G) = (1/|G|) sum_g tr pi(g)``

    Parameters
    ----------
    representation : array_like, shape (|G|, N, N)
        The matrices ``pi(g)`` of *every* group element (not just generators).
    atol : float
        The character average must be within ``atol`` of an integer (it always is for a
        genuine representation; a larger deviation means the matrices are not a group).

    Returns
    -------
    int
        N_0, the multiplicity of the trivial irrep.
    """
    rep = check_array(representation, "representation", ndim=3, min_size=1)
    if rep.shape[1] != rep.shape[2]:
        fail("representation", "of shape (|G|, N, N) with square matrices", rep)
    atol = check_real(atol, "atol", lo=0.0)
    avg = float(np.trace(rep, axis1=1, axis2=2).mean())
    n0 = round(avg)
    if abs(avg - n0) > atol * max(1.0, rep.shape[1]):
        fail("representation", "the matrices of a whole finite group (character average not an integer)",
             f"average trace {avg:.6g}")
    return int(n0)


def permutation_orbit_count(generators, n: int | None = None) -> int:
    """Number of orbits of the group generated by permutations of {0, ..., n-1}.

    For a permutation representation this equals ``dim Fix(G)`` (Burnside's lemma: the
    average number of fixed points is the number of orbits). Computed by union-find over the
    generators, so the group itself is never enumerated.

    Parameters
    ----------
    generators : array_like of int, shape (k, n)
        Each row is a permutation in one-line notation (``perm[i]`` is the image of i).
    n : int, optional
        Size of the set (defaults to the row length).
    """
    gens = np.asarray(generators)
    if gens.ndim == 1:
        gens = gens[None, :]
    if gens.ndim != 2 or not np.issubdtype(gens.dtype, np.integer):
        fail("generators", "an integer array of shape (k, n)", generators, TypeError)
    size = gens.shape[1] if n is None else check_int(n, "n", lo=1)
    if gens.shape[1] != size:
        fail("generators", f"rows of length n={size}", gens)
    for row in gens:
        if sorted(row.tolist()) != list(range(size)):
            fail("generators", "permutations of 0..n-1", row)
    parent = list(range(size))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row in gens:
        for i, j in enumerate(row.tolist()):
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[ri] = rj
    return len({find(i) for i in range(size)})


@dataclass(frozen=True, kw_only=True)
class FixedDimFit(SolverResult):
    """Maximum-likelihood estimate of N_0 from separable counts.

    Attributes
    ----------
    n_dims : float
        Estimated (real-valued) fixed-space dimension.
    stderr : float
        Standard error from the observed Fisher information.
    capacity : float
        ``2 * n_dims``: the estimated P at which half of the dichotomies are separable.
    """

    n_dims: float
    stderr: float
    capacity: float


def _log_likelihood(P: np.ndarray, k: np.ndarray, n: np.ndarray, n0: float, eps: float = 1e-12) -> float:
    f = np.clip(separable_fraction(P, n0), eps, 1 - eps)
    return float(np.sum(k * np.log(f) + (n - k) * np.log1p(-f)))


def _check_counts(n_points, n_separable, n_trials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated separability counts: P (capped), separable dichotomies <= trials, all shape (k,)."""
    P = check_array(n_points, "n_points", ndim=1, positive=True, min_size=1)
    if np.any(P > MAX_SIZE):
        fail("n_points", f"at most {MAX_SIZE:.0e} (a size cap far above real use)", n_points)
    k = check_array(n_separable, "n_separable", shape=(P.shape[0],), nonnegative=True)
    n = check_array(n_trials, "n_trials", shape=(P.shape[0],), positive=True)
    if np.any(k > n):
        fail("n_separable", "at most n_trials elementwise", n_separable)
    return P, k, n


def cover_log_likelihood(n_points, n_separable, n_trials, n_dims: float) -> float:
    """Binomial log-likelihood of measured separability counts under Cover's count with ``n_dims``.

    ``sum_P [k_P log f(P) + (n_P - k_P) log(1 - f(P))]`` with ``f = separable_fraction(P, n_dims)``
    clipped to [1e-12, 1 - 1e-12] (a count that the law calls impossible costs ~27.6 nats
    instead of an infinite penalty). The difference between two ``n_dims`` is the
    log-likelihood ratio of the two counts (e.g. N_0 = dim Fix(G) against the ambient N).

    Parameters
    ----------
    n_points, n_separable, n_trials : array_like of int, shape (k,)
        Number of objects, separable random dichotomies, and trials at each P.
    n_dims : float
        Dimension in Cover's count (>= 0).
    """
    P, k, n = _check_counts(n_points, n_separable, n_trials)
    return _log_likelihood(P, k, n, check_real(n_dims, "n_dims", lo=0))


def fit_fixed_space_dim(n_points, n_separable, n_trials, *, bounds: tuple[float, float] | None = None) -> FixedDimFit:
    """Estimate N_0 from measured separability counts by maximum likelihood.

    Each P contributes a binomial likelihood ``Binom(n_separable | n_trials, f(P; N_0))`` with
    the continuous Cover fraction ``f = I_{1/2}(P - N_0, N_0)``. This is how a measured
    fraction curve is turned into a capacity estimate ``P_c = 2 N_0``.

    Parameters
    ----------
    n_points, n_separable, n_trials : array_like of int, shape (k,)
        Number of objects, number of separable random dichotomies, and trials at each P.
    bounds : (float, float), optional
        Search interval for N_0 (default (0.05, max P)).
    """
    P, k, n = _check_counts(n_points, n_separable, n_trials)
    lo, hi = (0.05, float(P.max())) if bounds is None else bounds
    lo = check_real(lo, "bounds[0]", lo=0, lo_closed=False)
    hi = check_real(hi, "bounds[1]", lo=lo, lo_closed=False)

    def nll(n0: float) -> float:
        return -_log_likelihood(P, k, n, n0)

    # coarse grid then bounded refinement (the likelihood is unimodal in practice but flat far out)
    grid = np.linspace(lo, hi, 200)
    vals = np.array([nll(g) for g in grid])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(nll, bounds=(a, b), method="bounded", options={"xatol": 1e-9})
    n0 = float(res.x)
    h = 1e-3 * max(1.0, n0)
    curv = (nll(n0 + h) - 2 * nll(n0) + nll(max(n0 - h, 1e-9))) / h**2
    stderr = float(1.0 / np.sqrt(curv)) if curv > 0 else float("inf")
    converged = bool(res.success)
    message = "converged" if converged else f"likelihood maximisation failed: {res.message}"
    if not converged:
        warn_not_converged("fit_fixed_space_dim", message)
    return FixedDimFit(
        n_dims=n0, stderr=stderr, capacity=2 * n0, converged=converged,
        iterations=int(getattr(res, "nfev", 0)), residual=float(res.fun), message=message,
    )
