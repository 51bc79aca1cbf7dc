"""Simulators for grokking (lazy -> rich) and for margin growth during overtraining.

* "Grokking as the Transition from Lazy to Rich Training Dynamics": a two-layer network
  ``f(x) = (alpha/N) sum_i a_i phi(w_i . x / sqrt D)``, ``phi(h) = h + eps h^2 / 2``, readouts
  ``a_i = +-1`` fixed and neurons in (w, +1), (w, -1) pairs so ``f = 0`` at initialisation, trained
  by full-batch GD on ``(1/2P) sum (f - y)^2`` with the per-weight learning rate ``lr N / alpha^2``,
  on ``y = lin b.x + (b.x)^2 / 2``, ``x ~ N(0, I_D)``. The gradient is the plain backpropagation
  formula through phi (no use of the quadratic structure); the test loss is measured on a fresh
  Gaussian test set (Monte Carlo) and the NTK is the empirical one.
* "Do Mice Grok? Glimpses of Hidden Progress During Overtraining in Sensory Cortex": a linear
  readout trained by GD on the logistic loss of linearly separable data, continued long after
  100% training accuracy; records the normalised margin, held-out accuracy, flips of held-out
  examples misclassified when training accuracy first saturated, and the steps needed to learn
  the reversed labels after a given amount of overtraining.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import check_array, check_int, check_real, fail
from lmech.kernels._alignment import centered_alignment_unchecked

_MAX_IN = 1e30  # larger inputs overflow the quadratic activations / logistic margins

__all__ = [
    "polynomial_task",
    "GrokkingRun",
    "train_two_layer",
    "separable_task",
    "MarginRun",
    "overtrain_logistic",
    "steps_to_reverse",
]


def polynomial_task(P: int, D: int, *, n_test: int = 4000, linear: float = 0.0, seed: int = 0):
    """Training inputs X (P, D), unit teacher b = e_1, labels y and a fresh test set (X_test, y_test)."""
    P = check_int(P, "P", lo=1, hi=10 ** 6)
    D = check_int(D, "D", lo=1, hi=10 ** 4)
    n_test = check_int(n_test, "n_test", lo=1, hi=10 ** 7)
    lin = check_real(linear, "linear", lo=-1e6, hi=1e6)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    b = np.zeros(D)
    b[0] = 1.0
    X, Xt = rng.standard_normal((P, D)), rng.standard_normal((n_test, D))

    def label(Z):
        return lin * Z[:, 0] + 0.5 * Z[:, 0] ** 2
    return X, b, label(X), Xt, label(Xt)


@dataclass(frozen=True)
class GrokkingRun:
    """Curves of GD runs, shape (n_alpha, n_seeds, n_rec) at ``times`` unless noted.

    ``train_loss`` (MSE on the training set); at ``probe_times`` (every ``align_every``-th record and
    the last; shape (n_alpha, n_seeds, n_probe)) ``test_loss`` (MSE on the fresh test set; Monte Carlo,
    ``test_loss_sem`` its standard error) and ``alignment`` (centred NTK-target alignment on the
    training set; 0 when ``align_every`` is 0), ``init_weights`` (n_seeds, N/2, D) the
    first neuron of each pair, and ``l``, ``A`` the coefficients of ``f = l.x + x^T A x / 2`` read off
    the weights at each record, (n_alpha, n_seeds, n_rec, D) and (n_alpha, n_seeds, n_rec, D, D).
    """

    alphas: np.ndarray
    times: np.ndarray
    train_loss: np.ndarray
    probe_times: np.ndarray
    test_loss: np.ndarray
    test_loss_sem: np.ndarray
    alignment: np.ndarray
    init_weights: np.ndarray
    l: np.ndarray
    A: np.ndarray


def train_two_layer(X, y, X_test, y_test, alphas, *, eps: float, lr: float, steps: int, width: int,
                    n_seeds: int = 1, record_every: int = 10, align_every: int = 0, seed: int = 0) -> GrokkingRun:
    """Full-batch GD on the paired two-layer network, batched over ``alphas`` and ``n_seeds`` inits.

    ``width`` N is the number of neurons (even; N/2 pairs). ``align_every`` > 0 records the empirical
    NTK alignment and the Monte Carlo test loss every that many records (cost (P^2 + n_test D) N
    each); the Monte Carlo test loss is always recorded at the last step. Same seed, same initial
    weights for every alpha.
    """
    X = check_array(X, "X", ndim=2, min_size=1, max_abs=_MAX_IN)
    P, D = X.shape
    y = check_array(y, "y", ndim=1, shape=(P,), max_abs=_MAX_IN)
    Xt = check_array(X_test, "X_test", ndim=2, shape=(None, D), min_size=D, max_abs=_MAX_IN)
    yt = check_array(y_test, "y_test", ndim=1, shape=(len(Xt),), max_abs=_MAX_IN)
    al = check_array(alphas, "alphas", ndim=(0, 1), positive=True, min_size=1, max_abs=1e6).reshape(-1)
    if al.min() < 1e-6:
        fail("alphas", "at least 1e-6 (the step lr / alpha would overflow)", al)
    eps = check_real(eps, "eps", lo=0.0, hi=1e3)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=1e6)
    steps = check_int(steps, "steps", lo=0, hi=10 ** 7)
    N = check_int(width, "width", lo=2, hi=10 ** 6)
    if N % 2:
        fail("width", "even (neurons come in +-1 readout pairs)", N)
    S = check_int(n_seeds, "n_seeds", lo=1, hi=10 ** 4)
    every = check_int(record_every, "record_every", lo=1)
    aevery = check_int(align_every, "align_every", lo=0)
    if float(P + len(Xt)) * N * S * len(al) * (steps // every + 1) + float(P) * N * D * S * len(al) * steps > 1e13:
        fail("steps", "small enough that the run costs <= 1e13 flops", steps)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    W0 = rng.standard_normal((S, N // 2, D))
    a = np.concatenate([np.ones(N // 2), -np.ones(N // 2)])
    B = len(al) * S  # runs, alpha-major
    W = np.broadcast_to(np.concatenate([W0, W0], axis=1), (len(al), S, N, D)).reshape(B, N, D).copy()
    sq = np.sqrt(D)
    times = np.arange(0, steps + 1, every)
    n_rec = len(times)
    probe = [r for r in range(n_rec) if (aevery and r % aevery == 0) or r == n_rec - 1]
    tr = np.zeros((B, n_rec))
    te, sem, align = (np.zeros((B, len(probe))) for _ in range(3))
    ls, As = np.zeros((B, n_rec, D)), np.zeros((B, n_rec, D, D))
    scale = np.repeat(al, S)[:, None]  # (B, 1)
    step = np.repeat(lr / scale[:, 0], N)  # per column of Wt
    Wt = np.ascontiguousarray(W.reshape(B * N, D).T)  # (D, B N): one GEMM for all runs

    def forward(Z, Wt):  # H (n, B, N) pre-activations, f (B, n)
        H = (Z @ Wt).reshape(len(Z), B, N) / sq
        return H, (scale / N) * ((H + 0.5 * eps * H ** 2) @ a).T
    r = 0
    for t in range(steps + 1):
        H, f = forward(X, Wt)
        delta = f - y
        if t % every == 0:
            W = Wt.T.reshape(B, N, D)
            tr[:, r] = np.mean(delta ** 2, axis=-1)
            if r in probe:
                j = probe.index(r)
                err = (forward(Xt, Wt)[1] - yt) ** 2
                te[:, j], sem[:, j] = err.mean(axis=-1), err.std(axis=-1, ddof=1) / np.sqrt(len(yt))
            ls[:, r] = (a @ W) * (scale / (N * sq))
            As[:, r] = np.matmul(np.swapaxes(W, 1, 2) * a, W) * (scale * eps / (N * D))[:, :, None]
            if r in probe and aevery:
                Jp = np.swapaxes(1.0 + eps * H, 0, 1)  # phi'(h), (B, P, N)
                K = (X @ X.T / D) * np.matmul(Jp, np.swapaxes(Jp, 1, 2)) / N
                align[:, probe.index(r)] = centered_alignment_unchecked(K, y, 0.0)
            r += 1
        if t == steps:
            break
        # dL/dw_i = (1/P) sum_mu delta_mu (alpha/N) a_i phi'(h_i mu) x_mu / sqrt D; step lr N / alpha^2
        coef = (delta.T[:, :, None] * (1.0 + eps * H) * a).reshape(P, B * N)
        Wt -= step * (X.T @ coef) / (P * sq)
    shp, pshp = (len(al), S, n_rec), (len(al), S, len(probe))
    return GrokkingRun(alphas=al, times=times, train_loss=tr.reshape(shp), probe_times=times[probe],
                       test_loss=te.reshape(pshp), test_loss_sem=sem.reshape(pshp), alignment=align.reshape(pshp),
                       init_weights=W0, l=ls.reshape(shp + (D,)), A=As.reshape(shp + (D, D)))


def separable_task(P: int, D: int, *, n_test: int = 2000, seed: int = 0):
    """Linearly separable binary data: labels of a random unit teacher v, inputs x ~ N(0, I_D).

    Returns ``X (P, D), y (P,), X_test, y_test`` with labels ``sign(v.x)`` in {-1, +1}.
    """
    P = check_int(P, "P", lo=2, hi=10 ** 6)
    D = check_int(D, "D", lo=1, hi=10 ** 4)
    n_test = check_int(n_test, "n_test", lo=1, hi=10 ** 7)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    v = rng.standard_normal(D)
    v /= np.linalg.norm(v)
    X, Xt = rng.standard_normal((P, D)), rng.standard_normal((n_test, D))
    return X, np.where(X @ v >= 0, 1.0, -1.0), Xt, np.where(Xt @ v >= 0, 1.0, -1.0)


@dataclass(frozen=True)
class MarginRun:
    """Overtraining of a linear logistic readout, recorded at ``steps`` (n_rec,).

    ``weights`` (n_rec, D); ``margin`` the normalised margin ``min_mu y_mu w.x_mu / |w|``;
    ``train_accuracy``, ``test_accuracy``; ``saturation_step`` the first step with 100% training
    accuracy (-1 if never); ``flipped`` the fraction, at each record, of the held-out examples
    misclassified at ``saturation_step`` that are now classified correctly (0 if none were);
    ``wrong_at_saturation`` marks those held-out examples (all False if training never saturated).
    """

    steps: np.ndarray
    weights: np.ndarray
    margin: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    saturation_step: int
    flipped: np.ndarray
    wrong_at_saturation: np.ndarray


def _logistic_grad(w, Z):
    u = Z @ w
    return -(Z.T @ (0.5 * (1.0 - np.tanh(0.5 * u)))) / len(Z)  # gradient of mean log(1 + e^{-u})


def overtrain_logistic(X, y, X_test, y_test, *, lr: float, record_steps) -> MarginRun:
    """GD from ``w = 0`` on the mean logistic loss of a linear readout (no bias), recorded at ``record_steps``."""
    X = check_array(X, "X", ndim=2, min_size=1, max_abs=_MAX_IN)
    P, D = X.shape
    y = check_array(y, "y", ndim=1, shape=(P,), max_abs=_MAX_IN)
    Xt = check_array(X_test, "X_test", ndim=2, shape=(None, D), min_size=D, max_abs=_MAX_IN)
    yt = check_array(y_test, "y_test", ndim=1, shape=(len(Xt),), max_abs=_MAX_IN)
    if not (np.all(np.abs(y) == 1) and np.all(np.abs(yt) == 1)):
        fail("y", "labels in {-1, +1} (and so must `y_test`)", y)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=1e6)
    rec = check_array(record_steps, "record_steps", ndim=1, nonnegative=True, min_size=1, max_abs=1e12)
    if np.any(rec != np.round(rec)):
        fail("record_steps", "whole numbers of steps", rec)
    rec = np.unique(rec).astype(np.int64)
    if float(rec[-1]) * P * D > 1e12:
        fail("record_steps", "at most 1e12 / (P D) steps", rec[-1])
    w = np.zeros(D)
    Z, Zt = X * y[:, None], Xt * yt[:, None]
    out_w, sat, wrong, j = [], -1, None, 0
    for t in range(int(rec[-1]) + 1):
        if sat < 0 and np.all(Z @ w > 0):
            sat, wrong = t, Zt @ w <= 0
        if t == rec[j]:
            out_w.append(w.copy())
            j += 1
        if t < rec[-1]:
            w = w - lr * _logistic_grad(w, Z)
    Wr = np.array(out_w)
    nrm = np.maximum(np.linalg.norm(Wr, axis=1), 1e-300)
    flipped = np.zeros(len(rec))
    if wrong is not None and wrong.any():
        flipped = np.mean((Zt[wrong] @ Wr.T) > 0, axis=0)
    return MarginRun(steps=rec, weights=Wr, margin=np.min(Z @ Wr.T, axis=0) / nrm,
                     train_accuracy=np.mean(Z @ Wr.T > 0, axis=0), test_accuracy=np.mean(Zt @ Wr.T > 0, axis=0),
                     saturation_step=sat, flipped=flipped,
                     wrong_at_saturation=np.zeros(len(yt), bool) if wrong is None else wrong)


def steps_to_reverse(X, y, w, *, lr: float, fraction: float = 0.5, max_steps: int = 10 ** 6) -> int:
    """GD steps on the logistic loss of the *reversed* labels ``-y``, from ``w``, until at least
    ``fraction`` of the training points are classified with the new labels (-1 if never)."""
    X = check_array(X, "X", ndim=2, min_size=1, max_abs=_MAX_IN)
    P, D = X.shape
    y = check_array(y, "y", ndim=1, shape=(P,))
    if not np.all(np.abs(y) == 1):
        fail("y", "labels in {-1, +1}", y)
    w = check_array(w, "w", ndim=1, shape=(D,), max_abs=_MAX_IN).copy()
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=1e6)
    frac = check_real(fraction, "fraction", lo=0.0, hi=1.0, lo_closed=False)
    cap = check_int(max_steps, "max_steps", lo=1, hi=10 ** 8)
    Z = -X * y[:, None]
    for t in range(cap + 1):
        if np.mean(Z @ w > 0) >= frac:
            return t
        w = w - lr * _logistic_grad(w, Z)
    return -1
