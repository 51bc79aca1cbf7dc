"""Small-initialisation networks trained by full-batch gradient descent, with their tangent kernels.

The real systems behind "Neural Networks as Kernel Learners: The Silent Alignment Effect" and
"A Theory of Neural Tangent Kernel Alignment and Its Influence on Training":

* :func:`train_deep_linear`: ``f(x) = w^T W_{L-1} ... W_1 x`` (depth ``L`` weight matrices, ``L = 2``
  is the two-layer linear net ``a^T W x``), every weight entry drawn ``N(0, sigma^2 / N)`` (the
  first layer ``N x D``, the hidden ones ``N x N``, the readout an ``N``-vector), so each layer has
  gain ``sigma`` and the initial tangent kernel is ``L sigma^{2(L-1)} x.x'`` at large width.
  MSE loss ``(1 / 2P) sum_mu (f(x_mu) - y_mu)^2``; the network is linear in ``x``, so its tangent
  kernel is ``K(x, x') = x^T M x'`` with the ``D x D`` matrix
  ``M = sum_l |d_l|^2 B_{l-1}^T B_{l-1}`` (``B_l = W_l ... W_1``, ``d_l`` the readout pulled back
  to layer ``l``), which is recorded.
* :func:`train_two_layer_relu`: ``f_c(x) = sum_i A_ic relu(w_i . x)`` with ``C`` outputs,
  ``w_i ~ N(0, sigma^2 I / D)``, ``A_ic ~ N(0, sigma^2 / N)``; records each output's tangent kernel
  on the training set and its centred alignment with every target.
* :func:`whitened_inputs`: Gaussian inputs with centred columns and an exactly prescribed
  empirical covariance (``X^T X / P = I`` or ``diag(spectrum)``; rows orthogonal when P < D).

Time is ``lr * steps`` (gradient descent, not flow). Every simulator is batched over seeds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import check_array, check_int, check_real, fail
from lmech.kernels._alignment import centered_alignment_unchecked

_BIG = 1e30  # entries beyond this overflow the kernels' products

__all__ = ["DeepLinearRun", "ReluRun", "whitened_inputs", "train_deep_linear", "train_two_layer_relu",
           "final_kernel_regression", "crossing_time", "kernel_shape_change"]


@dataclass(frozen=True)
class DeepLinearRun:
    """Recorded training of a batch of deep linear networks.

    Attributes
    ----------
    times : ndarray (T,)                  ``lr * step`` at each record
    loss : ndarray (S, T)                 training loss ``(1/2P)|X v - y|^2`` per seed
    v : ndarray (S, T, D)                 end-to-end map ``f(x) = v . x``
    ntk : ndarray (S, T, D, D)            input-space tangent-kernel matrix ``M``
    alignment : ndarray (S, T)            centred alignment of ``X M X^T`` with ``y``
    """

    times: np.ndarray
    loss: np.ndarray
    v: np.ndarray
    ntk: np.ndarray
    alignment: np.ndarray


@dataclass(frozen=True)
class ReluRun:
    """Recorded training of a batch of multi-output two-layer ReLU networks.

    Attributes
    ----------
    times : ndarray (T,)
    loss : ndarray (S, T)                 training loss ``(1/2P) sum_c |f_c - y_c|^2``
    specialization : ndarray (S, T, C, C) ``S_cc' = A(K_c, y_c')``, centred alignment of output c's
                                          tangent kernel (on the training set) with target c'
    """

    times: np.ndarray
    loss: np.ndarray
    specialization: np.ndarray


def whitened_inputs(P: int, D: int, *, seed: int, spectrum=None) -> np.ndarray:
    """Gaussian inputs (P x D) with centred columns and exact empirical second moments.

    ``spectrum=None``: ``X^T X / P = I_D`` when ``P > D``; when ``P <= D`` the rows are made
    orthogonal instead, ``X X^T / P = I_P`` (``Sigma`` is then the projector on the data's span).
    A ``spectrum`` (D positive numbers, needs ``P > D``) gives ``X^T X / P = diag(spectrum)``.
    """
    P, D = check_int(P, "P", lo=2, hi=10**6), check_int(D, "D", lo=1, hi=10**5)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    X = rng.standard_normal((P, D))
    if spectrum is not None:
        spectrum = check_array(spectrum, "spectrum", shape=(D,), positive=True)
    if P > D:
        X -= X.mean(0)
        evals, evecs = np.linalg.eigh(X.T @ X / P)
        X = X @ evecs @ np.diag(evals ** -0.5) @ evecs.T
        return X if spectrum is None else X * np.sqrt(spectrum)
    if spectrum is not None:
        fail("spectrum", f"None when P <= D (P = {P}, D = {D})", spectrum)
    evals, evecs = np.linalg.eigh(X @ X.T / P)
    return evecs @ np.diag(evals ** -0.5) @ evecs.T @ X


def _check_common(X, y, sigma, lr, n_steps, n_records, n_seeds):
    X = check_array(X, "X", ndim=2, min_size=1)
    y = check_array(y, "y", ndim=(1, 2))
    if y.shape[0] != X.shape[0]:
        fail("y", f"as long as X has rows ({X.shape[0]})", y)
    return (X, y, check_real(sigma, "sigma", lo=0, lo_closed=False), check_real(lr, "lr", lo=0, lo_closed=False),
            check_int(n_steps, "n_steps", lo=1, hi=10**7), check_int(n_records, "n_records", lo=1, hi=10**5),
            check_int(n_seeds, "n_seeds", lo=1, hi=10**4))


def _record_steps(n_steps: int, n_records: int) -> np.ndarray:
    return np.unique(np.linspace(0, n_steps, n_records + 1).round().astype(int))


def train_deep_linear(X, y, *, depth: int, width: int, sigma: float, lr: float, n_steps: int,
                      n_records: int = 200, n_seeds: int = 1, seed: int = 0) -> DeepLinearRun:
    """Full-batch GD on ``n_seeds`` deep linear networks of ``depth`` layers (see the module docstring).

    The loss depends on the data only through ``Sigma = X^T X / P`` and ``r = X^T y / P``; one step
    is ``W_l <- W_l - lr d_l (B_{l-1} g)^T`` with ``g = Sigma v - r`` (``B_0 = I``, ``d_L = 1``).
    Records ``n_records + 1`` evenly spaced steps (0 and ``n_steps`` included).
    """
    X, y, sigma, lr, n_steps, n_records, n_seeds = _check_common(X, y, sigma, lr, n_steps, n_records, n_seeds)
    L = check_int(depth, "depth", lo=2, hi=32)
    N = check_int(width, "width", lo=1, hi=10**5)
    if y.ndim != 1:
        fail("y", "1-dimensional (one output)", y)
    P, D = X.shape
    Sigma, r = X.T @ X / P, X.T @ y / P
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    s = sigma / np.sqrt(N)
    Ws = [rng.standard_normal((n_seeds, N, D)) * s] + [rng.standard_normal((n_seeds, N, N)) * s
                                                       for _ in range(L - 2)]
    w = rng.standard_normal((n_seeds, N)) * s
    rec = _record_steps(n_steps, n_records)
    loss, vs, Ms = [], [], []
    y2 = y @ y / (2 * P)
    for step in range(n_steps + 1):
        B = [Ws[0]]
        for W in Ws[1:]:
            B.append(W @ B[-1])  # (S, N, D)
        v = np.einsum("snd,sn->sd", B[-1], w)
        d = [w]  # d[k]: readout pulled back to the output of layer L-1-k
        for W in Ws[:0:-1]:
            d.append(np.einsum("snm,sn->sm", W, d[-1]))
        d = d[::-1]  # d[l-1] pulled back to the output of weight matrix l (l = 1..L-1)
        if step in rec:
            M = B[-1].transpose(0, 2, 1) @ B[-1] + np.einsum("s,de->sde", (d[0] * d[0]).sum(1), np.eye(D))
            for l in range(1, L - 1):  # readout term, first layer, then the hidden layers
                M += (d[l] * d[l]).sum(1)[:, None, None] * (B[l - 1].transpose(0, 2, 1) @ B[l - 1])
            Ms.append(M)
            vs.append(v)
            loss.append(0.5 * np.einsum("sd,de,se->s", v, Sigma, v) - v @ r + y2)
        if step == n_steps:
            break
        g = v @ Sigma - r  # (S, D)
        grads = [np.einsum("sn,sd->snd", d[0], g)]
        for l in range(1, L - 1):
            grads.append(np.einsum("sn,sm->snm", d[l], np.einsum("smd,sd->sm", B[l - 1], g)))
        w = w - lr * np.einsum("snd,sd->sn", B[-1], g)
        Ws = [W - lr * G for W, G in zip(Ws, grads)]
        if not np.all(np.abs(w) < 1e30):
            fail("lr", f"small enough for stable training (diverged at step {step})", lr)
    ntk = np.stack(Ms, 1)
    return DeepLinearRun(rec * lr, np.stack(loss, 1), np.stack(vs, 1), ntk,
                         centered_alignment_unchecked(np.einsum("pd,stde,qe->stpq", X, ntk, X, optimize=True), y))


def final_kernel_regression(X, y, X_test, ntk) -> np.ndarray:
    """Ridgeless regression with the input-space kernel ``x^T M x'``: predictions on ``X_test``.

    ``f(x) = x^T M X^T (X M X^T)^+ y`` for each leading batch index of ``ntk`` (..., D, D).
    """
    X, X_test = check_array(X, "X", ndim=2, max_abs=_BIG), check_array(X_test, "X_test", ndim=2, max_abs=_BIG)
    y = check_array(y, "y", shape=(X.shape[0],), max_abs=_BIG)
    D = X.shape[1]
    ntk = check_array(ntk, "ntk", ndim=tuple(range(2, 8)), max_abs=_BIG)
    if ntk.shape[-2:] != (D, D) or X_test.shape[1] != D:
        fail("ntk", f"of trailing shape ({D}, {D}) with X_test of {D} columns", ntk)
    K = np.einsum("pd,...de,qe->...pq", X, ntk, X, optimize=True)
    alpha = np.einsum("...pq,q->...p", np.linalg.pinv(K, hermitian=True), y)
    return np.einsum("td,...de,pe,...p->...t", X_test, ntk, X, alpha, optimize=True)


def train_two_layer_relu(X, Y, *, width: int, sigma: float, lr: float, n_steps: int, n_records: int = 20,
                         n_seeds: int = 1, seed: int = 0) -> ReluRun:
    """Full-batch GD on ``n_seeds`` two-layer ReLU networks with ``C = Y.shape[1]`` outputs.

    Per-output tangent kernel on the training set:
    ``K_c = (relu'(XW^T) A_c)(relu'(XW^T) A_c)^T * (X X^T) + relu(XW^T) relu(XW^T)^T``.
    """
    X, Y, sigma, lr, n_steps, n_records, n_seeds = _check_common(X, Y, sigma, lr, n_steps, n_records, n_seeds)
    N = check_int(width, "width", lo=1, hi=10**5)
    if Y.ndim != 2:
        fail("Y", "2-dimensional (P, C)", Y)
    P, D = X.shape
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    W = rng.standard_normal((n_seeds, N, D)) * sigma / np.sqrt(D)
    A = rng.standard_normal((n_seeds, N, Y.shape[1])) * sigma / np.sqrt(N)
    rec, G = _record_steps(n_steps, n_records), X @ X.T
    loss, spec = [], []
    for step in range(n_steps + 1):
        H = np.einsum("pd,snd->spn", X, W)
        phi, dphi = np.maximum(H, 0.0), (H > 0).astype(float)
        E = np.einsum("spn,snc->spc", phi, A) - Y  # (S, P, C)
        if step in rec:
            J = np.einsum("spn,snc->scpn", dphi, A)
            K = np.einsum("scpn,scqn->scpq", J, J) * G + np.einsum("spn,sqn->spq", phi, phi)[:, None]
            spec.append(np.stack([centered_alignment_unchecked(K, Y[:, c]) for c in range(Y.shape[1])], -1))
            loss.append(0.5 * np.einsum("spc,spc->s", E, E) / P)
        if step == n_steps:
            break
        back = np.einsum("spc,snc->spn", E, A) * dphi / P
        A = A - lr * np.einsum("spn,spc->snc", phi, E) / P
        W = W - lr * np.einsum("spn,pd->snd", back, X)
        if not np.all(np.abs(A) < 1e30):
            fail("lr", f"small enough for stable training (diverged at step {step})", lr)
    return ReluRun(rec * lr, np.stack(loss, 1), np.stack(spec, 1))


def crossing_time(t, curve, level: float) -> float:
    """First time a recorded curve crosses ``level`` (from either side), linearly interpolated."""
    t, c = check_array(t, "t", ndim=1, min_size=2), check_array(curve, "curve", ndim=1, min_size=2)
    if len(c) != len(t):
        fail("curve", f"as long as t ({len(t)})", curve)
    level = check_real(level, "level")
    side = np.sign(c - level)
    hit = np.flatnonzero(side != side[0])
    if side[0] == 0 or not hit.size:
        return float(t[0]) if side[0] == 0 else fail("curve", f"to cross level {level:g}", curve)
    i = int(hit[0])
    return float(t[i - 1] + (t[i] - t[i - 1]) * (level - c[i - 1]) / (c[i] - c[i - 1]))


def kernel_shape_change(X, loss, ntk, fraction: float = 0.5) -> float:
    """``1 - CKA(K(t_*), K_final)`` of input-space kernels ``ntk`` (T, D, D) on the rows of X.

    ``t_*`` is the first record whose loss is below ``fraction`` of its initial value; CKA is the
    centred kernel alignment ``<HK_1H, HK_2H>_F / (|HK_1H|_F |HK_2H|_F)``.
    """
    X, loss = check_array(X, "X", ndim=2, max_abs=_BIG), check_array(loss, "loss", ndim=1, min_size=1)
    ntk = check_array(ntk, "ntk", shape=(len(loss), X.shape[1], X.shape[1]), max_abs=_BIG)
    i = int(np.argmax(loss < check_real(fraction, "fraction", lo=0, hi=1) * loss[0]))
    K = np.einsum("pd,tde,qe->tpq", X, ntk[[i, -1]], X, optimize=True)
    K = K - K.mean(1, keepdims=True) - K.mean(2, keepdims=True) + K.mean((1, 2), keepdims=True)
    norms = np.linalg.norm(K[0]) * np.linalg.norm(K[1])
    if not np.isfinite(norms) or norms == 0:
        fail("ntk", "such that both centred kernels are non-zero and finite", ntk)
    return float(1 - np.sum(K[0] * K[1]) / norms)
