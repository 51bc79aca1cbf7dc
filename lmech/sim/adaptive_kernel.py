"""Mean-field networks trained to the weight-decay fixed point, sampled from their Bayesian
posterior, and transferred from a source to a target task with an elastic weight coupling.

The real systems behind :mod:`lmech.theory.adaptive_kernel` ("Adaptive kernel predictors
from feature-learning infinite limits of neural networks"; "Transfer Learning in Infinite
Width Feature Learning Networks", both Lauditi, Bordelon & Pehlevan). Network of width ``N``
with ``L`` hidden layers (every entry of ``W^l`` and ``w`` i.i.d. N(0, 1) at initialisation)::

    h^1 = W^0 x / sqrt(D),   h^{l+1} = W^l phi(h^l) / sqrt(N),   f = w . phi(h^L) / (gamma0 N)

Loss ``L = (1/2) sum_mu (y_mu - f_mu)^2`` (a sum over the training set, as in the papers, so
the ridge of the kernel predictor is the weight decay ``lambda`` itself). Full-batch gradient
descent with weight decay on every parameter::

    theta <- theta - lr * (gamma0^2 N dL/dtheta + lambda theta)

which at small ``lr`` is the gradient flow whose fixed point the theory describes. Bayesian
networks are sampled by Langevin dynamics at temperature 1 of the energy
``(beta gamma0^2 N / 2) sum_mu (y_mu - f_mu)^2 + |theta|^2 / 2`` (prior N(0, 1) on every weight,
likelihood of inverse temperature ``beta gamma0^2 N``). Everything is float64 numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import (check_choice, check_int, check_real, check_regression_data, fail)
from lmech.nonlinearities import NONLINEARITIES

__all__ = ["WeightDecayRun", "train_weight_decay", "train_transfer", "BayesianSamples", "langevin_posterior",
           "ACTIVATIONS", "binary_digits_tasks"]

ACTIVATIONS = ("relu", "tanh", "linear")
_MAX_WIDTH = 1 << 15


def _phi(h: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(h, 0.0)
    return np.tanh(h) if act == "tanh" else h


def _dphi(h: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return (h > 0).astype(h.dtype)
    return 1.0 - np.tanh(h) ** 2 if act == "tanh" else np.ones_like(h)


@dataclass(frozen=True)
class WeightDecayRun:
    """One network trained with weight decay (values at the last step).

    ``kernel``/``kernel_init``: last-layer feature kernel ``Phi^L = phi(h^L) phi(h^L)^T / N`` on
    the training points followed by the test points, at the end and at initialisation;
    ``f_train``/``f_test``: the network's outputs; ``rel_grad``: ``|gamma0^2 N grad L + lambda
    theta (+ coupling)| / |theta|`` at the end (0 at an exact fixed point); ``krr_error``:
    relative L2 distance between ``f_test`` and kernel ridge regression with ``kernel`` and
    ridge ``lambda`` (the readout stationarity identity); ``params``: the final weights.
    """

    width: int
    f_train: np.ndarray
    f_test: np.ndarray
    train_loss: float
    test_loss: float
    kernel: np.ndarray
    kernel_init: np.ndarray
    rel_grad: float
    krr_error: float
    params: tuple


def _T(a):
    return np.swapaxes(a, -1, -2)


def _forward(params, X, act):
    """Pre-activations and activations of every hidden layer (params may carry a leading chain axis)."""
    D, N = X.shape[1], params[-1].shape[-1]
    hs, acts = [], []
    a = X
    for li, W in enumerate(params[:-1]):
        h = a @ _T(W) / np.sqrt(D if li == 0 else N)
        hs.append(h)
        a = _phi(h, act)
        acts.append(a)
    return hs, acts


def _output(params, acts, gamma0):
    return (acts[-1] @ params[-1][..., None])[..., 0] / (gamma0 * params[-1].shape[-1])


def _scaled_grad(params, X, hs, acts, delta, gamma0, act):
    """gamma0^2 N dL/dtheta for L = (1/2) sum (y - f)^2 with delta = y - f on the rows of X."""
    N, D = params[-1].shape[-1], X.shape[1]
    grads = [None] * len(params)
    grads[-1] = -gamma0 * (_T(acts[-1]) @ delta[..., None])[..., 0]
    back = _dphi(hs[-1], act) * params[-1][..., None, :] * gamma0  # gamma0^2 N * (df/dh^L) = gamma0 phi' w
    for li in range(len(params) - 2, -1, -1):
        below = X if li == 0 else acts[li - 1]
        scale = np.sqrt(D if li == 0 else N)
        grads[li] = -_T(back * delta[..., None]) @ below / scale
        if li > 0:
            back = _dphi(hs[li - 1], act) * (back @ params[li]) / np.sqrt(N)
    return grads


def _init(rng, D, N, depth, batch=()):
    return [rng.standard_normal((*batch, N, D))] + [rng.standard_normal((*batch, N, N)) for _ in range(depth - 1)] + \
        [rng.standard_normal((*batch, N))]


def _descend(params, X, y, *, gamma0, weight_decay, lr, steps, act, anchor=None, coupling=0.0):
    """Full-batch GD with decay; ``anchor`` (with ``coupling``) pulls the hidden weights to it."""
    if len(params) == 2 and params[0].ndim == 2:
        return _descend_two_layer(params, X, y, gamma0=gamma0, weight_decay=weight_decay, lr=lr, steps=steps, act=act,
                                  anchor=anchor, coupling=coupling)
    params = [p.copy() for p in params]
    for _ in range(steps):
        hs, acts = _forward(params, X, act)
        delta = y - _output(params, acts, gamma0)
        for i, g in enumerate(_scaled_grad(params, X, hs, acts, delta, gamma0, act)):
            c = coupling if anchor is not None and i < len(params) - 1 else 0.0
            pull = c * anchor[i] if c else 0.0
            params[i] = (params[i] - lr * (g - pull)) / (1 + lr * (weight_decay + c))
        if not np.isfinite(params[-1]).all():
            fail("lr", f"small enough for stable descent (the weights overflowed at lr={lr:g})", lr)
    return params


def _descend_two_layer(params, X, y, *, gamma0, weight_decay, lr, steps, act, anchor=None, coupling=0.0):
    """:func:`_descend` for one hidden layer and no chain axis, with the (points x width) and
    (width x inputs) work arrays allocated once and updated in place: the same arithmetic,
    about 2x faster on one core (fresh multi-MB arrays cost a page fault per page)."""
    W, w = params[0].copy(), params[1].copy()
    (N, D), P = W.shape, X.shape[0]
    sD = np.sqrt(D)
    c = coupling if anchor is not None else 0.0
    pull = c * anchor[0] if c else None
    h, a, back = np.empty((P, N)), np.empty((P, N)), np.empty((P, N))
    G = np.empty_like(W)
    fill = NONLINEARITIES[act].fill
    assert fill is not None
    for _ in range(steps):
        np.matmul(X, W.T, out=h)
        h /= sD
        fill(h, a, back)  # phi(h), phi'(h) in place
        delta = y - (a @ w[:, None])[:, 0] / (gamma0 * N)
        gw = -gamma0 * (a.T @ delta[:, None])[:, 0]
        back *= w
        back *= gamma0  # gamma0^2 N * (df/dh) = gamma0 phi'(h) w
        back *= delta[:, None]
        np.matmul(back.T, X, out=G)
        np.negative(G, out=G)
        G /= sD
        if pull is not None:
            G -= pull
        G *= lr
        np.subtract(W, G, out=G)
        np.divide(G, 1 + lr * (weight_decay + c), out=W)
        w = (w - lr * gw) / (1 + lr * weight_decay)
        if not np.isfinite(w).all():
            fail("lr", f"small enough for stable descent (the weights overflowed at lr={lr:g})", lr)
    return [W, w]


def _summary(params, params0, X, y, Xt, yt, *, gamma0, weight_decay, act, anchor=None, coupling=0.0):
    N = params[-1].shape[0]
    Xall = np.vstack([X, Xt])
    P = X.shape[0]
    hs, acts = _forward(params, Xall, act)
    f = _output(params, acts, gamma0)
    feats = acts[-1]
    K = feats @ feats.T / N
    a0 = _forward(params0, Xall, act)[1][-1]
    hs_tr, acts_tr = [h[:P] for h in hs], [a[:P] for a in acts]
    grads = _scaled_grad(params, X, hs_tr, acts_tr, y - f[:P], gamma0, act)
    tot = [g + weight_decay * p + (coupling * (p - anchor[i]) if anchor is not None and i < len(params) - 1 else 0.0)
           for i, (g, p) in enumerate(zip(grads, params))]
    rel_grad = float(np.sqrt(sum(np.sum(t**2) for t in tot) / sum(np.sum(p**2) for p in params)))
    f_krr = K[P:, :P] @ np.linalg.solve(K[:P, :P] + weight_decay * np.eye(P), y)
    krr_err = float(np.linalg.norm(f_krr - f[P:]) / max(np.linalg.norm(f[P:]), 1e-300))
    return WeightDecayRun(N, f[:P], f[P:], float(0.5 * np.sum((y - f[:P]) ** 2)), float(np.mean((yt - f[P:]) ** 2)),
                          K, a0 @ a0.T / N, rel_grad, krr_err, tuple(params))


def _check_common(gamma0, weight_decay, lr, steps, activation, depth):
    gamma0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    weight_decay = check_real(weight_decay, "weight_decay", lo=0.0, lo_closed=False)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False)
    steps = check_int(steps, "steps", lo=0, hi=10**7)
    check_choice(activation, "activation", ACTIVATIONS)
    depth = check_int(depth, "depth", lo=1, hi=16)
    return gamma0, weight_decay, lr, steps, depth


def train_weight_decay(X, y, X_test, y_test, *, width: int, gamma0: float, weight_decay: float, lr: float,
                       steps: int, activation: str = "relu", depth: int = 1, seed: int = 0) -> WeightDecayRun:
    """Train one width-``width`` mean-field network by full-batch GD with weight decay.

    Update ``theta <- (theta - lr gamma0^2 N dL/dtheta) / (1 + lr weight_decay)`` with
    ``L = (1/2) sum_mu (y_mu - f_mu)^2``; ``depth`` hidden layers. Returns the final outputs,
    test loss, last-layer feature kernel, stationarity residual and the readout identity's
    error (see :class:`WeightDecayRun`).
    """
    X, y, Xt, yt = check_regression_data(X, y, X_test, y_test, test_labels_required=True)
    if Xt is None:
        fail("X_test", "given (test points are needed for the test loss)", X_test)
    gamma0, weight_decay, lr, steps, depth = _check_common(gamma0, weight_decay, lr, steps, activation, depth)
    width = check_int(width, "width", lo=1, hi=_MAX_WIDTH)
    seed = check_int(seed, "seed", lo=0)
    params0 = _init(np.random.default_rng(seed), X.shape[1], width, depth)
    params = _descend(params0, X, y, gamma0=gamma0, weight_decay=weight_decay, lr=lr, steps=steps, act=activation)
    return _summary(params, params0, X, y, Xt, yt, gamma0=gamma0, weight_decay=weight_decay, act=activation)


def train_transfer(X_source, y_source, X, y, X_test, y_test, *, width: int, gamma0: float, weight_decay: float,
                   couplings, lr: float, steps_source: int, steps: int, activation: str = "relu",
                   seed: int = 0) -> tuple[WeightDecayRun, list[WeightDecayRun]]:
    """Pretrain a two-layer network on the source task, then train it on the target task.

    Source: :func:`train_weight_decay` on ``(X_source, y_source)``. Target: starting from the
    source weights ``theta_s``, GD on ``gamma0^2 N L_target + (weight_decay/2)|theta|^2 +
    (coupling/2)|W - W_s|^2`` where the elastic coupling acts on the hidden weights ``W`` only
    (the readout is retrained with plain decay), once for each coupling in ``couplings``
    from the same source network. Returns ``(source_run, [target_run per coupling])``; a
    target run's ``kernel_init`` is the source network's feature kernel on the target points.
    """
    Xs, ys, _, _ = check_regression_data(X_source, y_source)
    X, y, Xt, yt = check_regression_data(X, y, X_test, y_test, test_labels_required=True)
    if Xt is None:
        fail("X_test", "given (test points are needed for the test loss)", X_test)
    if Xs.shape[1] != X.shape[1]:
        fail("X_source", f"of shape (any, {X.shape[1]}) to match X", Xs)
    gamma0, weight_decay, lr, steps, _ = _check_common(gamma0, weight_decay, lr, steps, activation, 1)
    steps_source = check_int(steps_source, "steps_source", lo=0, hi=10**7)
    deltas = [check_real(c, "couplings", lo=0.0) for c in np.atleast_1d(np.asarray(couplings, dtype=object))]
    width = check_int(width, "width", lo=1, hi=_MAX_WIDTH)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    params0 = _init(rng, X.shape[1], width, 1)
    src = _descend(params0, Xs, ys, gamma0=gamma0, weight_decay=weight_decay, lr=lr, steps=steps_source, act=activation)
    run_s = _summary(src, params0, Xs, ys, X, y, gamma0=gamma0, weight_decay=weight_decay, act=activation)
    runs = []
    for c in deltas:
        tgt = _descend(src, X, y, gamma0=gamma0, weight_decay=weight_decay, lr=lr, steps=steps, act=activation,
                       anchor=src, coupling=c)
        runs.append(_summary(tgt, src, X, y, Xt, yt, gamma0=gamma0, weight_decay=weight_decay, act=activation,
                             anchor=src, coupling=c))
    return run_s, runs


@dataclass(frozen=True)
class BayesianSamples:
    """Posterior averages from Langevin chains (mean over chains and recorded steps).

    ``f_train``/``f_test`` and their standard errors (``*_sem``, over chains),
    ``kernels``: the average feature kernel of each hidden layer on train then test points.
    """

    width: int
    f_train: np.ndarray
    f_test: np.ndarray
    f_train_sem: np.ndarray
    f_test_sem: np.ndarray
    kernels: tuple


def langevin_posterior(X, y, X_test, *, width: int, gamma0: float, beta: float, depth: int = 1,
                       activation: str = "linear", dt: float = 0.01, steps: int = 20000, burn_in: int = 5000,
                       every: int = 10, chains: int = 4, seed: int = 0) -> BayesianSamples:
    """Sample the Bayesian mean-field network's posterior by unadjusted Langevin dynamics.

    ``theta <- theta - dt (beta gamma0^2 N dL/dtheta + theta) + sqrt(2 dt) xi`` with
    ``L = (1/2) sum (y - f)^2``: stationary density ``prior N(0, I) x exp(-beta gamma0^2 N L)``
    (up to O(dt)). ``chains`` independent chains; after ``burn_in`` steps every ``every``-th
    state is averaged. Standard errors are over chains.
    """
    X, y, Xt, _ = check_regression_data(X, y, X_test)
    if Xt is None:
        fail("X_test", "given", X_test)
    gamma0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    beta = check_real(beta, "beta", lo=0.0, lo_closed=False)
    dt = check_real(dt, "dt", lo=0.0, lo_closed=False)
    check_choice(activation, "activation", ACTIVATIONS)
    depth = check_int(depth, "depth", lo=1, hi=16)
    width = check_int(width, "width", lo=1, hi=_MAX_WIDTH)
    steps = check_int(steps, "steps", lo=1, hi=10**8)
    burn_in = check_int(burn_in, "burn_in", lo=0, hi=steps - 1)
    every = check_int(every, "every", lo=1)
    chains = check_int(chains, "chains", lo=2, hi=1024)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    P, Xall = X.shape[0], np.vstack([X, Xt])
    params = _init(rng, X.shape[1], width, depth, batch=(chains,))  # all chains at once
    F, ks, n = 0.0, None, 0
    for t in range(steps):
        hs, acts = _forward(params, X, activation)
        delta = y - _output(params, acts, gamma0)
        for i, g in enumerate(_scaled_grad(params, X, hs, acts, delta, gamma0, activation)):
            params[i] = params[i] - dt * (beta * g + params[i]) + np.sqrt(2 * dt) * rng.standard_normal(g.shape)
        if not np.isfinite(params[-1]).all():
            fail("dt", f"small enough for a stable Langevin chain (it overflowed at dt={dt:g})", dt)
        if t >= burn_in and (t - burn_in) % every == 0:
            _, a_all = _forward(params, Xall, activation)
            F = F + _output(params, a_all, gamma0)
            kk = [a @ _T(a) / width for a in a_all]
            ks = kk if ks is None else [s_ + k for s_, k in zip(ks, kk)]
            n += 1
    F = F / n
    sem = F.std(axis=0, ddof=1) / np.sqrt(chains)
    kernels = tuple(k.mean(0) / n for k in ks)
    return BayesianSamples(width, F.mean(0)[:P], F.mean(0)[P:], sem[:P], sem[P:], kernels)


def binary_digits_tasks(n_train: int, n_test: int, *, source: tuple = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)),
                        target: tuple = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)), seed: int = 0):
    """Binary +1/-1 tasks on scikit-learn's 8x8 digits for source/target experiments.

    ``source``/``target`` are pairs of digit groups (label -1, label +1). Disjoint random images
    (``seed``) for the source training set and the target training and test sets; inputs
    standardised and projected to the sphere of radius sqrt(64) (so ``x.x'/D`` is a cosine).
    Returns ``(X_source, y_source, X, y, X_test, y_test)`` with ``n_train`` source and target
    training images and ``n_test`` target test images.
    """
    from lmech.data.vision import load_digits, standardize

    n_train = check_int(n_train, "n_train", lo=2, hi=500)
    n_test = check_int(n_test, "n_test", lo=1, hi=500)
    ds = load_digits(standardized=False)
    X = standardize(ds.X, unit_sphere=True)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    order = rng.permutation(len(ds.y))

    def pick(groups, idx, n):
        neg, pos = (set(int(g) for g in grp) for grp in groups)
        keep = [i for i in idx if int(ds.y[i]) in neg | pos][:n]
        if len(keep) < n:
            fail("n_train", f"small enough for the digit groups {groups}", n)
        return X[keep], np.array([1.0 if int(ds.y[i]) in pos else -1.0 for i in keep]), keep

    Xs, ys, _ = pick(source, order[: len(order) // 2], n_train)
    rest = order[len(order) // 2:]
    Xa, ya, _ = pick(target, rest, n_train + n_test)
    return Xs, ys, Xa[:n_train], ya[:n_train], Xa[n_train:], ya[n_train:]
