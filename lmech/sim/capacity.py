"""Linear-programming measurement of G-invariant separability, and group representations.

The real system behind Farrell, Bordelon, Trivedi & Pehlevan, "Capacity of Group-invariant
Linear Readouts from Equivariant Representations: How Many Objects can be Linearly Classified
Under All Possible Views?": draw P random objects, give each a random label, and ask whether
one readout ``w`` classifies *every view* ``pi(g) x_mu`` of every object correctly. That is the
feasibility LP ``y_mu w . pi(g) x_mu >= 1`` for all (mu, g), solved with HiGHS
(``scipy.optimize.linprog``). Nothing here uses the fixed-space dimension: the simulation sees
only the orbits.

Group representations are returned as dense arrays ``(|G|, N, N)`` of all group elements.
Their size is capped: at most ``MAX_REP_ENTRIES`` (10**8, 800 MB of float64) entries
``|G| N^2``, far beyond the N of a few hundred used for the capacity experiments; larger
requests raise ValueError before anything is allocated.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from lmech._validation import MAX_SIZE, check_array, check_int, fail

__all__ = [
    "cyclic_shift_rep",
    "translation_rep_2d",
    "dihedral_rep",
    "permutation_rep",
    "symmetric_pairs_rep",
    "rotation_rep",
    "direct_sum",
    "is_invariantly_separable",
    "is_separable",
    "SeparabilityCounts",
    "separability_experiment",
    "conv_relu_features",
]


# --------------------------------------------------------------------------- representations
def _perm_matrices(perms: np.ndarray) -> np.ndarray:
    """(k, n) one-line permutations -> (k, n, n) matrices with (M x)[perm[i]] = x[i]."""
    k, n = perms.shape
    mats = np.zeros((k, n, n))
    rows = perms.ravel()
    cols = np.tile(np.arange(n), k)
    mats[np.repeat(np.arange(k), n), rows, cols] = 1.0
    return mats


def permutation_rep(perms) -> np.ndarray:
    """Matrices of the permutations given in one-line notation, shape (k, n, n).

    ``perms`` must list *all* elements of the group (use it e.g. with ``itertools.permutations``).
    """
    p = np.asarray(perms)
    if p.ndim != 2 or not np.issubdtype(p.dtype, np.integer):
        fail("perms", "an integer array of shape (|G|, n)", perms, TypeError)
    n = p.shape[1]
    for row in p:
        if sorted(row.tolist()) != list(range(n)):
            fail("perms", "permutations of 0..n-1", row)
    return _perm_matrices(p)


#: Largest ``|G| * N * N`` a representation builder will allocate (see the module docstring).
MAX_REP_ENTRIES = 10**8


def _check_rep_size(order: int, dim: int, name: str, value) -> None:
    if order * dim * dim > MAX_REP_ENTRIES:
        fail(name, f"small enough that |G| * N^2 = {order} * {dim}^2 stays within "
             f"{MAX_REP_ENTRIES:.0e} entries (the dense representation is allocated)", value)


def cyclic_shift_rep(length: int, channels: int = 1) -> np.ndarray:
    """Z_n acting by circular shifts on ``channels`` signals of length n (N = channels * n).

    Each channel carries the regular representation, whose fixed space is the constant
    signal, so dim Fix = channels.
    """
    n = check_int(length, "length", lo=1)
    c = check_int(channels, "channels", lo=1)
    _check_rep_size(n, c * n, "length" if n * n * n > MAX_REP_ENTRIES else "channels", length if n ** 3 > MAX_REP_ENTRIES else channels)
    idx = np.arange(c * n).reshape(c, n)
    perms = np.stack([np.roll(idx, s, axis=1).ravel() for s in range(n)])
    # perm[i] is the image of coordinate i: position (ch, j) -> (ch, j + s)
    inv = np.argsort(perms, axis=1)
    return _perm_matrices(inv)


def translation_rep_2d(size: int, channels: int = 1) -> np.ndarray:
    """Z_n x Z_n acting by circular 2-D translations on ``channels`` images of size n x n."""
    n = check_int(size, "size", lo=1)
    c = check_int(channels, "channels", lo=1)
    _check_rep_size(n * n, c * n * n, "size" if n ** 6 > MAX_REP_ENTRIES else "channels", size if n ** 6 > MAX_REP_ENTRIES else channels)
    idx = np.arange(c * n * n).reshape(c, n, n)
    perms = np.stack([np.roll(idx, (a, b), axis=(1, 2)).ravel() for a in range(n) for b in range(n)])
    return _perm_matrices(np.argsort(perms, axis=1))


def dihedral_rep(length: int, channels: int = 1) -> np.ndarray:
    """Dihedral group D_n (shifts and reflections) acting on ``channels`` signals of length n."""
    n = check_int(length, "length", lo=1)
    c = check_int(channels, "channels", lo=1)
    _check_rep_size(2 * n, c * n, "length" if 2 * n ** 3 > MAX_REP_ENTRIES else "channels", length if 2 * n ** 3 > MAX_REP_ENTRIES else channels)
    idx = np.arange(c * n).reshape(c, n)
    out = []
    for flip in (False, True):
        base = idx[:, ::-1] if flip else idx
        for s in range(n):
            out.append(np.roll(base, s, axis=1).ravel())
    return _perm_matrices(np.argsort(np.stack(out), axis=1))


def symmetric_pairs_rep(n: int) -> np.ndarray:
    """S_n acting on n x n matrices by simultaneous row/column permutation (N = n^2).

    Orbits of index pairs: the diagonal and the off-diagonal, so dim Fix = 2 (for n >= 2).
    """
    import itertools

    m = check_int(n, "n", lo=1, hi=6)
    idx = np.arange(m * m).reshape(m, m)
    perms = [idx[np.ix_(s, s)].ravel() for s in map(list, itertools.permutations(range(m)))]
    return _perm_matrices(np.argsort(np.stack(perms), axis=1))


def rotation_rep(order: int, frequencies, n_trivial: int = 0) -> np.ndarray:
    """Z_k acting on R^2 planes by rotations ``2 pi m g / k`` (one plane per frequency m),
    plus ``n_trivial`` invariant coordinates. A non-permutation orthogonal representation.

    A plane with frequency m is fixed pointwise when ``m = 0 mod k``; otherwise it contributes
    nothing to the fixed space, so dim Fix = n_trivial + 2 * #{m : m = 0 mod k}.
    """
    k = check_int(order, "order", lo=1)
    freqs = np.atleast_1d(check_array(frequencies, "frequencies", ndim=(0, 1)))
    if np.any(freqs != np.round(freqs)) or np.any(np.abs(freqs) > 2**62):
        fail("frequencies", "integers", frequencies)
    freqs = freqs.astype(int)
    t = check_int(n_trivial, "n_trivial", lo=0)
    dim = 2 * len(freqs) + t
    if dim == 0:
        fail("frequencies", "non-empty when n_trivial is 0", frequencies)
    _check_rep_size(k, dim, "order" if k > MAX_REP_ENTRIES // max(dim, 1) ** 2 // 2 else "n_trivial", order if k > MAX_REP_ENTRIES // max(dim, 1) ** 2 // 2 else n_trivial)
    mats = np.zeros((k, dim, dim))
    for g in range(k):
        for j, m in enumerate(freqs):
            th = 2 * np.pi * m * g / k
            mats[g, 2 * j:2 * j + 2, 2 * j:2 * j + 2] = [[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]
        mats[g, 2 * len(freqs):, 2 * len(freqs):] = np.eye(t)
    return mats


def direct_sum(*reps: np.ndarray) -> np.ndarray:
    """Block-diagonal direct sum of representations of the same group (same element order)."""
    if not reps:
        fail("reps", "at least one representation", reps)
    reps = tuple(check_array(r, "reps", ndim=3, min_size=1) for r in reps)
    for r in reps:
        if r.shape[1] != r.shape[2]:
            fail("reps", "arrays of shape (|G|, N, N) with square matrices", r)
    k = reps[0].shape[0]
    if any(r.shape[0] != k for r in reps):
        fail("reps", "representations of one group (same number of elements)", [r.shape for r in reps])
    dim = sum(r.shape[1] for r in reps)
    out = np.zeros((k, dim, dim))
    o = 0
    for r in reps:
        d = r.shape[1]
        out[:, o:o + d, o:o + d] = r
        o += d
    return out


# --------------------------------------------------------------------------- feasibility
def is_separable(points, labels) -> bool:
    """Homogeneous linear separability: is there ``w`` with ``y_mu w . z_mu >= 1`` for all mu?"""
    Z = check_array(points, "points", ndim=2)
    y = check_array(labels, "labels", shape=(Z.shape[0],))
    return _feasible(-(y[:, None] * Z))


def _feasible(A: np.ndarray) -> bool:
    """Is there ``w`` with ``A w < 0`` (strictly)? Solved as a bounded max-margin LP.

    maximise t subject to ``A w + t <= 0``, ``-1 <= w <= 1``, ``t <= 1``: always feasible and
    bounded (so the solver never has to certify infeasibility, which is numerically fragile
    for large orbit LPs); the dichotomy is separable iff the optimal margin t* > 0.
    """
    m, n = A.shape
    scale = float(np.max(np.abs(A))) or 1.0
    A_ub = np.hstack([A / scale, np.ones((m, 1))])
    c = np.zeros(n + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(m), bounds=[(-1.0, 1.0)] * n + [(None, 1.0)], method="highs")
    if res.status != 0:
        raise RuntimeError(f"linprog failed (status {res.status}): {res.message}")
    return bool(-res.fun > _MARGIN_TOL)


_MARGIN_TOL = 1e-9


def is_invariantly_separable(points, labels, representation) -> bool:
    """Is there one ``w`` with ``y_mu w . pi(g) x_mu >= 1`` for every object mu and element g?

    Parameters
    ----------
    points : array_like, shape (P, N)
    labels : array_like, shape (P,), entries +-1
    representation : array_like, shape (|G|, N, N)
    """
    X = check_array(points, "points", ndim=2)
    y = check_array(labels, "labels", shape=(X.shape[0],))
    rep = check_array(representation, "representation", ndim=3, min_size=1)
    if rep.shape[1:] != (X.shape[1], X.shape[1]):
        fail("representation", f"of shape (|G|, {X.shape[1]}, {X.shape[1]}) to act on the points", rep)
    views = np.einsum("gij,pj->pgi", rep, X)  # (P, |G|, N)
    A = -(y[:, None, None] * views).reshape(-1, X.shape[1])
    return _feasible(A)


@dataclass(frozen=True)
class SeparabilityCounts:
    """Outcome of :func:`separability_experiment`.

    Attributes
    ----------
    n_points : ndarray (k,)
    n_separable : ndarray (k,)      trials whose random dichotomy was invariantly separable
    n_trials : ndarray (k,)
    fraction, stderr : ndarray (k,)  separable fraction and its binomial standard error
    projected_agrees : int           trials where the LP on the group-averaged points
                                     (sum_g pi(g) x / |G|) gave the same answer (when checked)
    projected_checked : int
    """

    n_points: np.ndarray
    n_separable: np.ndarray
    n_trials: np.ndarray
    fraction: np.ndarray
    stderr: np.ndarray
    projected_agrees: int = 0
    projected_checked: int = 0


def separability_experiment(
    representation,
    n_points,
    n_trials: int,
    *,
    seed: int = 0,
    feature_map: Callable[[np.ndarray], np.ndarray] | None = None,
    input_dim: int | None = None,
    check_projection: bool = False,
) -> SeparabilityCounts:
    """Fraction of random dichotomies of random objects that are invariantly separable.

    Objects are i.i.d. standard Gaussian inputs; with ``feature_map`` (an equivariant layer
    ``phi`` with ``phi(pi_in(g) x) = pi(g) phi(x)``) the points are ``phi(x)`` and the views
    ``pi(g) phi(x)``. Labels are uniform +-1.

    Parameters
    ----------
    representation : array_like, shape (|G|, N, N)
        Action on the points that the readout must be invariant to.
    n_points : array_like of int, shape (k,)
        Numbers of objects P to test.
    n_trials : int
        Random (points, labels) draws per P.
    seed : int
    feature_map : callable, optional
        Maps inputs of shape (P, input_dim) to points of shape (P, N).
    input_dim : int, optional
        Input dimension for ``feature_map`` (default N).
    check_projection : bool
        Also solve the LP on the group-averaged points and count agreements.
    """
    rep = check_array(representation, "representation", ndim=3, min_size=1)
    N = rep.shape[1]
    Ps = check_array(n_points, "n_points", ndim=1, positive=True, min_size=1)
    if np.any(Ps > MAX_SIZE) or np.any(Ps != np.round(Ps)):
        fail("n_points", f"integers in [1, {MAX_SIZE:.0e}] (a size cap far above real use)", n_points)
    Ps = Ps.astype(int)
    trials = check_int(n_trials, "n_trials", lo=1, hi=10**6)
    d_in = N if input_dim is None else check_int(input_dim, "input_dim", lo=1)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    proj = rep.mean(axis=0)
    n_sep = np.zeros(len(Ps), dtype=int)
    agree = checked = 0
    for i, P in enumerate(Ps):
        for _ in range(trials):
            X = rng.standard_normal((P, d_in))
            if feature_map is not None:
                X = np.asarray(feature_map(X), dtype=float)
                if X.shape != (P, N):
                    fail("feature_map", f"a map to shape ({P}, {N})", X.shape)
            y = rng.choice([-1.0, 1.0], size=P)
            ok = is_invariantly_separable(X, y, rep)
            n_sep[i] += ok
            if check_projection:
                checked += 1
                agree += ok == is_separable(X @ proj.T, y)
    n = np.full(len(Ps), trials)
    frac = n_sep / n
    return SeparabilityCounts(
        n_points=Ps, n_separable=n_sep, n_trials=n, fraction=frac,
        stderr=np.sqrt(np.maximum(frac * (1 - frac), 1.0 / (4 * trials)) / trials),
        projected_agrees=agree, projected_checked=checked,
    )


def conv_relu_features(length: int, in_channels: int, out_channels: int, kernel_size: int = 3, *, seed: int = 0):
    """A random circular convolution + ReLU layer, equivariant to cyclic shifts.

    Returns ``phi`` mapping inputs (P, in_channels * length) to (P, out_channels * length);
    ``phi(shift_s x) = shift_s phi(x)`` channel by channel, so the output carries
    ``cyclic_shift_rep(length, out_channels)``.
    """
    n = check_int(length, "length", lo=1)
    cin = check_int(in_channels, "in_channels", lo=1)
    cout = check_int(out_channels, "out_channels", lo=1)
    k = check_int(kernel_size, "kernel_size", lo=1, hi=n)
    for name, value, size in (("length", length, n), ("in_channels", in_channels, cin), ("out_channels", out_channels, cout)):
        if size > 10**6 or n * cin * cout * k > MAX_REP_ENTRIES:
            fail(name, f"such that length * in_channels * out_channels * kernel_size <= {MAX_REP_ENTRIES:.0e} "
                 "and each is at most 1e6 (the filters and features are dense)", value)
    seed = check_int(seed, "seed", lo=0)
    W = np.random.default_rng(seed).standard_normal((cout, cin, k)) / np.sqrt(cin * k)

    def phi(X: np.ndarray) -> np.ndarray:
        x = X.reshape(X.shape[0], cin, n)
        out = np.zeros((X.shape[0], cout, n))
        for j in range(k):
            out += np.einsum("oc,pcn->pon", W[:, :, j], np.roll(x, -j, axis=2))
        return np.maximum(out, 0.0).reshape(X.shape[0], cout * n)

    return phi
