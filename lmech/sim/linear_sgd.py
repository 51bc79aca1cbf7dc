"""SGD on linear models: Gaussian features (online and on a fixed training set) and linear
random-feature models. Every simulator is batched over independent seeds.

These are the *real systems* whose averaged behaviour :mod:`lmech.theory.sgd`,
:mod:`lmech.theory.two_point` and :mod:`lmech.theory.schedules` predict; they share those
modules' conventions:

* features in the covariance eigenbasis, ``psi_k = sqrt(lam_k) z_k`` with z iid N(0, 1);
  target ``y = sum_k v_k z_k + eps``, ``v_k = sqrt(target_power[k])``, ``eps ~ N(0, noise)``;
* one step: ``w <- w - (eta_t / B) sum_{mu in batch} psi_mu (psi_mu . w - y_mu)``, ``w_0 = 0``;
* test loss = ``E_x (f(x) - f*(x))^2`` computed *exactly* from the weights (no test set),
  no factor 1/2; training loss = mean over the training set of ``(f(x_mu) - y_mu)^2``
  (noisy labels).

Weights are tracked as the function-space error ``d_k = sqrt(lam_k) w_k - v_k``, so the test
loss is simply ``sum_k d_k^2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_SIZE, check_array, check_int, check_real, fail

__all__ = [
    "SimCurve",
    "sgd_gaussian",
    "sgd_fixed_data",
    "sgd_random_features",
    "sgd_pool",
    "relu_random_features",
]


@dataclass(frozen=True)
class SimCurve:
    """Seed-averaged simulation curve.

    Attributes
    ----------
    steps : ndarray of int, shape (n_times,)
        SGD steps at which the losses were recorded.
    loss : ndarray, shape (n_times,)
        Mean test loss over seeds.
    loss_sem : ndarray, shape (n_times,)
        Standard error of that mean.
    losses : ndarray, shape (n_seeds, n_times)
        Per-seed test losses.
    train_loss : ndarray or None, shape (n_times,)
        Mean training loss (fixed-training-set simulators only).
    train_losses : ndarray or None, shape (n_seeds, n_times)
    """

    steps: np.ndarray
    loss: np.ndarray
    loss_sem: np.ndarray
    losses: np.ndarray
    train_loss: np.ndarray | None = None
    train_losses: np.ndarray | None = None

    @classmethod
    def from_losses(cls, steps, losses, train_losses=None) -> "SimCurve":
        """Seed statistics; runs that overflowed (diverged) read ``+inf``, never NaN."""
        losses = np.where(np.isfinite(losses), losses, np.inf)
        if train_losses is not None:
            train_losses = np.where(np.isfinite(train_losses), train_losses, np.inf)
        n = losses.shape[0]
        with np.errstate(invalid="ignore"):
            sem = losses.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(losses.shape[1])
        mean = losses.mean(axis=0)
        sem = np.where(np.isfinite(mean), sem, np.inf)
        tr = None if train_losses is None else train_losses.mean(axis=0)
        return cls(np.asarray(steps), mean, sem, losses, tr, train_losses)


# --------------------------------------------------------------------------- helpers
def _problem(eigenvalues, target_power, noise):
    lam = check_array(eigenvalues, "eigenvalues", ndim=1, nonnegative=True, min_size=1)
    if not np.any(lam > 0):
        fail("eigenvalues", "not all zero", lam)
    v2 = check_array(target_power, "target_power", shape=(lam.shape[0],), nonnegative=True)
    s2 = check_real(noise, "noise", lo=0.0)
    return lam, np.sqrt(v2), s2


def _schedule(lr, steps, schedule):
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    if schedule is None:
        return np.full(steps, eta)
    sched = check_array(schedule, "schedule", shape=(steps,), nonnegative=True)
    return eta * sched


def _record(times, steps):
    if times is None:
        return np.arange(steps + 1)
    tt = check_array(times, "times", ndim=1, min_size=1)
    if np.any(tt != np.round(tt)) or np.any(tt < 0) or np.any(tt > steps):
        fail("times", f"integers in [0, steps={steps}]", times)
    return np.unique(tt.astype(np.int64))


def _chunks(n_seeds, chunk):
    chunk = n_seeds if chunk is None else max(1, int(chunk))
    return [(s, min(s + chunk, n_seeds)) for s in range(0, n_seeds, chunk)]


# --------------------------------------------------------------------------- online
def sgd_gaussian(
    eigenvalues,
    target_power,
    lr,
    batch_size,
    steps,
    noise=0.0,
    *,
    schedule=None,
    n_seeds: int = 100,
    seed: int = 0,
    times=None,
    chunk: int | None = None,
) -> SimCurve:
    """Online (fresh samples every step) minibatch SGD on Gaussian features, many seeds at once.

    The real system behind :func:`lmech.theory.sgd.learning_curve` (same conventions).

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (N,)
        Feature covariance eigenvalues and target power per eigenfunction.
    lr : float
        Learning rate (peak rate when ``schedule`` is given), > 0.
    batch_size : int
        Fresh samples per step, >= 1.
    steps : int
        Number of SGD steps.
    noise : float
        Label-noise variance.
    schedule : array_like, shape (steps,), optional
        Multiplier of ``lr`` per step.
    n_seeds : int
        Independent runs (batched).
    seed : int
        Seed of the random stream; the same seed gives the same numbers.
    times : array_like of int, optional
        Steps at which to record the loss (default every step).
    chunk : int, optional
        Seeds processed together (memory control; default all). The random stream is
        consumed chunk by chunk, so the numbers depend on ``chunk``: keep it fixed for
        reproducibility.

    Returns
    -------
    SimCurve
    """
    lam, v, s2 = _problem(eigenvalues, target_power, noise)
    T = check_int(steps, "steps", lo=0)
    B = check_int(batch_size, "batch_size", lo=1)
    S = check_int(n_seeds, "n_seeds", lo=1)
    etas = _schedule(lr, T, schedule)
    rec = _record(times, T)
    want = np.zeros(T + 1, dtype=bool)
    want[rec] = True
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    learn = lam > 0
    lam_l, N = lam[learn], int(learn.sum())
    floor = float(np.sum(v[~learn] ** 2))
    # unlearnable target components are independent Gaussian label noise
    s_eff = np.sqrt(s2 + floor)
    out = np.empty((S, len(rec)))
    for a, b in _chunks(S, chunk):
        n = b - a
        d = np.tile(-v[learn], (n, 1))
        j = 0
        if want[0]:
            out[a:b, j] = (d * d).sum(1) + floor
            j += 1
        with np.errstate(over="ignore", invalid="ignore"):
            for t in range(T):
                z = rng.standard_normal((n, B, N))
                r = np.einsum("sbn,sn->sb", z, d)
                if s_eff > 0:
                    r -= s_eff * rng.standard_normal((n, B))
                d -= (etas[t] / B) * lam_l * np.einsum("sbn,sb->sn", z, r)
                if want[t + 1]:
                    out[a:b, j] = (d * d).sum(1) + floor
                    j += 1
    out = np.where(np.isfinite(out), out, np.inf)
    return SimCurve.from_losses(rec, out)


# --------------------------------------------------------------------------- fixed data
def _fixed_data_run(lam, w_star, X_all, Y_all, etas, B, rec, want, rng, test_matrix=None):
    """Multi-pass SGD on fixed sets. X_all (S, P, M) features, Y_all (S, P) labels.

    Returns per-seed test and train losses. Test loss = (w - w*)^T Sigma (w - w*) + floor when
    ``test_matrix`` is None, else an explicit callable ``test_matrix(w) -> (S,)``.
    """
    S, P, M = X_all.shape
    w = np.zeros((S, M))
    T = len(etas)
    test = np.empty((S, len(rec)))
    train = np.empty((S, len(rec)))
    rows = np.arange(S)[:, None]

    def record(j):
        if test_matrix is None:
            dw = w - w_star
            test[:, j] = (dw * dw) @ lam
        else:
            test[:, j] = test_matrix(w)
        res = np.einsum("spm,sm->sp", X_all, w) - Y_all
        train[:, j] = (res * res).mean(1)

    j = 0
    if want[0]:
        record(j)
        j += 1
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            idx = rng.integers(0, P, size=(S, B))  # uniform, with replacement
            Xb = X_all[rows, idx]  # (S, B, M)
            r = np.einsum("sbm,sm->sb", Xb, w) - Y_all[rows, idx]
            w -= (etas[t] / B) * np.einsum("sbm,sb->sm", Xb, r)
            if want[t + 1]:
                record(j)
                j += 1
    return test, train


def sgd_fixed_data(
    eigenvalues,
    target_power,
    n_samples,
    lr,
    batch_size,
    steps,
    noise=0.0,
    *,
    schedule=None,
    n_seeds: int = 20,
    seed: int = 0,
    times=None,
    chunk: int | None = None,
) -> SimCurve:
    """Multi-pass minibatch SGD on a fixed training set of Gaussian features.

    Each seed draws its own training set of ``n_samples`` points (``x = sqrt(lam) z``) and
    labels, then runs SGD with batches drawn uniformly *with replacement* from it. Records the
    exact test loss and the training loss.

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (M,)
        Population covariance eigenvalues (> 0 here) and target power.
    n_samples : int
        Training-set size P.
    lr, batch_size, steps, noise, schedule, n_seeds, seed, times, chunk
        As in :func:`sgd_gaussian`. Batches are drawn with replacement, so even
        ``batch_size = n_samples`` is (slightly noisy) SGD, not gradient descent.

    Returns
    -------
    SimCurve
        With ``train_loss`` filled.
    """
    lam, v, s2 = _problem(eigenvalues, target_power, noise)
    if np.any(lam <= 0):
        fail("eigenvalues", "strictly positive for the fixed-data simulator", lam)
    P = check_int(n_samples, "n_samples", lo=1)
    T = check_int(steps, "steps", lo=0)
    B = check_int(batch_size, "batch_size", lo=1)
    S = check_int(n_seeds, "n_seeds", lo=1)
    etas = _schedule(lr, T, schedule)
    rec = _record(times, T)
    want = np.zeros(T + 1, dtype=bool)
    want[rec] = True
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    w_star = v / np.sqrt(lam)
    sq = np.sqrt(lam)
    tests, trains = [], []
    for a, b in _chunks(S, chunk):
        n = b - a
        Z = rng.standard_normal((n, P, lam.size))
        X = Z * sq
        Y = Z @ v + np.sqrt(s2) * rng.standard_normal((n, P))
        te, tr = _fixed_data_run(lam, w_star, X, Y, etas, B, rec, want, rng)
        tests.append(te)
        trains.append(tr)
    return SimCurve.from_losses(rec, np.vstack(tests), np.vstack(trains))


# --------------------------------------------------------------------------- random features
def sgd_random_features(
    eigenvalues,
    target_power,
    projection,
    lr,
    batch_size,
    steps,
    noise=0.0,
    *,
    n_samples: int | None = None,
    schedule=None,
    n_seeds: int = 20,
    seed: int = 0,
    times=None,
    chunk: int | None = None,
) -> SimCurve:
    """SGD on the linear random-feature model ``f(x) = a . F x / sqrt(N)``, ``a_0 = 0``.

    Latent data ``x = sqrt(lam) z`` in R^M, target ``y = sum_k v_k z_k + eps``. The projection
    ``F`` (N, M) is given (the same for every seed: the theory is conditional on it; draw it
    e.g. as ``np.random.default_rng(s).standard_normal((N, M))``); each seed draws its own
    data and batch order. With ``n_samples=None``
    training is online (fresh samples each step); otherwise each seed draws a fixed set of
    ``n_samples`` points and batches are drawn from it uniformly with replacement.
    The test loss ``E_x (f - f*)^2 = (F^T a/sqrt(N) - w*)^T Lambda (F^T a/sqrt(N) - w*)`` is
    computed exactly.

    Returns
    -------
    SimCurve
        ``train_loss`` is filled for fixed training sets.
    """
    lam, v, s2 = _problem(eigenvalues, target_power, noise)
    if np.any(lam <= 0):
        fail("eigenvalues", "strictly positive", lam)
    F = check_array(projection, "projection", ndim=2)
    if F.shape[1] != lam.shape[0]:
        fail("projection", f"of shape (N, {lam.shape[0]})", F)
    N = F.shape[0]
    T = check_int(steps, "steps", lo=0)
    B = check_int(batch_size, "batch_size", lo=1)
    S = check_int(n_seeds, "n_seeds", lo=1)
    etas = _schedule(lr, T, schedule)
    rec = _record(times, T)
    want = np.zeros(T + 1, dtype=bool)
    want[rec] = True
    G = F * np.sqrt(lam) / np.sqrt(N)  # psi = G z
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))

    def test_loss(a):  # function-space error coefficients on z: G^T a - v
        d = a @ G - v
        return (d * d).sum(1)

    if n_samples is None:
        out = np.empty((S, len(rec)))
        with np.errstate(over="ignore", invalid="ignore"):  # divergent runs overflow to inf
            for a0, b0 in _chunks(S, chunk):
                n = b0 - a0
                a = np.zeros((n, N))
                j = 0
                if want[0]:
                    out[a0:b0, j] = test_loss(a)
                    j += 1
                for t in range(T):
                    z = rng.standard_normal((n, B, lam.size))
                    psi = z @ G.T  # (n, B, N)
                    r = np.einsum("sbn,sn->sb", psi, a) - z @ v
                    if s2 > 0:
                        r += np.sqrt(s2) * rng.standard_normal((n, B))
                    a -= (etas[t] / B) * np.einsum("sbn,sb->sn", psi, r)
                    if want[t + 1]:
                        out[a0:b0, j] = test_loss(a)
                        j += 1
        return SimCurve.from_losses(rec, out)

    P = check_int(n_samples, "n_samples", lo=1)
    tests, trains = [], []
    for a0, b0 in _chunks(S, chunk):
        n = b0 - a0
        Z = rng.standard_normal((n, P, lam.size))
        Psi = Z @ G.T
        Y = Z @ v + np.sqrt(s2) * rng.standard_normal((n, P))
        te, tr = _fixed_data_run(None, None, Psi, Y, etas, B, rec, want, rng, test_matrix=test_loss)
        tests.append(te)
        trains.append(tr)
    return SimCurve.from_losses(rec, np.vstack(tests), np.vstack(trains))


# --------------------------------------------------------------------------- real features
def sgd_pool(
    features,
    targets,
    lr,
    batch_size,
    steps,
    *,
    schedule=None,
    n_seeds: int = 50,
    seed: int = 0,
    times=None,
) -> SimCurve:
    """Online SGD on real features: batches drawn uniformly (with replacement) from a pool.

    The pool is the data distribution, so the test loss is the pool MSE of the linear model
    minus that of the best linear predictor: ``(w - w*)^T Sigma (w - w*)`` with
    ``Sigma = Psi^T Psi / n`` and ``w* = Sigma^+ Psi^T y / n`` (the clean-target loss of
    :func:`lmech.theory.sgd.learning_curve` applied to
    :func:`lmech.theory.sgd.gaussian_equivalent`). Same update convention as
    :func:`sgd_gaussian`, ``w_0 = 0``.

    Parameters
    ----------
    features : array_like, shape (n, N)
    targets : array_like, shape (n,)
    lr, batch_size, steps, schedule, n_seeds, seed, times
        As in :func:`sgd_gaussian`.

    Returns
    -------
    SimCurve
    """
    Psi = check_array(features, "features", ndim=2, min_size=1)
    y = check_array(targets, "targets", shape=(Psi.shape[0],))
    T = check_int(steps, "steps", lo=0)
    B = check_int(batch_size, "batch_size", lo=1)
    S = check_int(n_seeds, "n_seeds", lo=1)
    etas = _schedule(lr, T, schedule)
    rec = _record(times, T)
    want = np.zeros(T + 1, dtype=bool)
    want[rec] = True
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    n, N = Psi.shape
    Sig = Psi.T @ Psi / n
    w_star = np.linalg.lstsq(Sig, Psi.T @ y / n, rcond=None)[0]
    w = np.zeros((S, N))
    out = np.empty((S, len(rec)))

    def loss(w):
        d = w - w_star
        return np.einsum("sn,nm,sm->s", d, Sig, d)

    j = 0
    if want[0]:
        out[:, j] = loss(w)
        j += 1
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            idx = rng.integers(0, n, size=(S, B))
            Pb = Psi[idx]  # (S, B, N)
            r = np.einsum("sbn,sn->sb", Pb, w) - y[idx]
            w -= (etas[t] / B) * np.einsum("sbn,sb->sn", Pb, r)
            if want[t + 1]:
                out[:, j] = loss(w)
                j += 1
    return SimCurve.from_losses(rec, np.where(np.isfinite(out), out, np.inf))


def relu_random_features(inputs, n_features: int, *, seed: int = 0) -> np.ndarray:
    """ReLU random features ``psi = max(x W / sqrt(d), 0) / sqrt(N)``, ``W_ij ~ N(0, 1)``.

    Parameters
    ----------
    inputs : array_like, shape (n, d)
    n_features : int
        N, the number of features.
    seed : int
        Seed of the random weights W.

    Returns
    -------
    ndarray, shape (n, N)
        Scaled so that ``|psi|^2`` stays O(|x|^2 / d) whatever N (a pool for :func:`sgd_pool`).
    """
    X = check_array(inputs, "inputs", ndim=2, min_size=1)
    N = check_int(n_features, "n_features", lo=1, hi=max(1, MAX_SIZE // max(X.shape[0], X.shape[1])))
    W = np.random.default_rng(check_int(seed, "seed", lo=0)).standard_normal((X.shape[1], N))
    return np.maximum(X @ W / np.sqrt(X.shape[1]), 0.0) / np.sqrt(N)
