"""Adaptive kernel predictors of feature-learning networks at infinite width, and transfer
learning with an elastic weight coupling.

Papers: "Adaptive kernel predictors from feature-learning infinite limits of neural networks"
and "Transfer Learning in Infinite Width Feature Learning Networks" (Lauditi, Bordelon &
Pehlevan). Network in the mean-field / muP parameterisation with richness ``gamma0``, width
``N`` and ``L`` hidden layers (entries of ``W^l``, ``w`` i.i.d. N(0, 1) at initialisation)::

    h^1 = W^0 x / sqrt(D),   h^{l+1} = W^l phi(h^l) / sqrt(N),   f = w . phi(h^L) / (gamma0 N),

input kernel ``K(x, x') = x . x' / D`` and loss ``L = (1/2) sum_mu (y_mu - f(x_mu))^2`` (a sum).

Weight decay (predictor II of the paper). Gradient flow
``d theta/dt = -gamma0^2 N dL/dtheta - lambda theta``. At any fixed point the readout is
``w = (gamma0/lambda) sum_mu Delta_mu phi(h^L_mu)``, ``Delta = y - f``, so that exactly, at any
width and for any activation,

    f(x) = Phi(x, X) [Phi(X, X) + lambda I]^{-1} y,   Phi = phi(h^L) phi(h^L)^T / N,

kernel ridge regression with the *final* (adapted) feature kernel and ridge ``lambda``. For a
two-layer network each hidden neuron obeys, given the residual, the single-site flow
``dh/dt = gamma0 z K (phi'(h) Delta) - lambda h``, ``dz/dt = gamma0 phi(h).Delta - lambda z``
(neurons interact only through ``Delta = y - <z phi(h)>/gamma0``); which fixed point a neuron
reaches depends on the path, so the infinite-width fixed point is found by running that
flow for a population of sampled neurons (:func:`weight_decay_two_layer`). For deep linear
networks the fixed point is rank one and balanced, which reduces it to one scalar equation
(:func:`weight_decay_deep_linear`).

Bayesian networks (predictor I): posterior ``prior N(0, I) x exp(-beta gamma0^2 N L)``. At
``N -> infinity`` its log-partition function is ``N`` times a min-max action over layer kernels
``Phi^l`` and conjugate kernels ``Phi_hat^l``; its saddle point gives ``Delta = (I + beta
Phi^L)^{-1} y``, the predictor ``f = Phi^L(x, X) [Phi^L + I/beta]^{-1} y`` and per-layer
single-site densities tilted by ``exp(-phi^T Phi_hat^l phi / 2)`` with ``Phi_hat^L = -beta^2
gamma0^2 Delta Delta^T`` (:func:`bayesian_deep_linear` in closed form,
:func:`bayesian_two_layer` by importance sampling).

Transfer (:func:`transfer_two_layer`): pretrain on a source task to the weight-decay fixed
point ``theta_s``; train on the target task with ``gamma0^2 N L_target + lambda |theta|^2/2 +
delta |W - W_s|^2 / 2`` on the hidden weights. ``delta -> infinity`` freezes the source
features (KRR with the source kernel), ``delta -> 0`` is weight-decay training started from
the source weights, whose fixed point forgets the start except for which basin it reaches.

Derivations were done for lmech (sum-loss conventions as in the authors' public code) and
checked against finite networks (tests/test_adaptive_kernel.py and the claims).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from lmech._validation import check_choice, check_int, check_real, check_regression_data, fail
from lmech.nonlinearities import NONLINEARITIES
from lmech.results import SolverResult, warn_not_converged

__all__ = ["AdaptiveKernelResult", "DeepLinearResult", "BayesianResult", "TransferResult", "krr_predict",
           "weight_decay_two_layer", "weight_decay_deep_linear", "bayesian_deep_linear", "bayesian_two_layer",
           "transfer_two_layer", "ACTIVATIONS"]

ACTIVATIONS = ("tanh", "relu", "linear")
_BLOCKS = 8
_MAX_SAMPLES = 1 << 21


def _phi(h, act):
    if act == "relu":
        return np.maximum(h, 0.0)
    return np.tanh(h) if act == "tanh" else h


def _dphi(h, act):
    if act == "relu":
        return (h > 0).astype(np.float64)
    return 1.0 - np.tanh(h) ** 2 if act == "tanh" else np.ones_like(h)


def krr_predict(K_train, K_cross, y, ridge: float) -> np.ndarray:
    """Kernel ridge regression ``K_cross [K_train + ridge I]^{-1} y`` (the adaptive predictor's form)."""
    K_train = np.asarray(K_train, float)
    return np.asarray(K_cross, float) @ np.linalg.solve(K_train + ridge * np.eye(len(K_train)), np.asarray(y, float))


def _data(X, y, X_test, y_test):
    X, y, Xt, yt = check_regression_data(X, y, X_test, y_test)
    if Xt is None:
        fail("X_test", "given (the predictor is evaluated there)", X_test)
    return X, y, Xt, yt


def _coords(*Xs):
    """Coordinates C (rows: points) with C C^T = x.x'/D on the stacked inputs, rank-reduced."""
    Xall = np.vstack(Xs) / np.sqrt(Xs[0].shape[1])
    _, s, Vt = np.linalg.svd(Xall, full_matrices=False)
    r = int(np.sum(s > s[0] * 1e-10)) if s.size and s[0] > 0 else 1
    C = Xall @ Vt[:r].T
    return [C[a:b] for a, b in zip(np.cumsum([0] + [len(x) for x in Xs[:-1]]), np.cumsum([len(x) for x in Xs]))]


def _mse(y, f):
    return float(np.mean((np.asarray(y) - f) ** 2)) if y is not None else float("nan")


# =========================================================================== weight decay, two layers
@dataclass(frozen=True, kw_only=True)
class AdaptiveKernelResult(SolverResult):
    """Weight-decay fixed point of a two-layer network at infinite width (sampled neurons).

    ``f_train`` the population's output ``<z phi(h)>/gamma0`` on the training points; ``kernel`` (P, P) and ``kernel_test`` (P', P): the adapted feature kernel ``<phi phi>``;
    ``f_test`` the predictor (KRR on ``kernel``, ridge ``weight_decay``); ``test_loss`` its MSE
    and ``test_loss_se`` the Monte Carlo standard error (over ``8`` blocks of neurons);
    ``f_test_se`` likewise per point. ``lazy_nngp_test_loss`` / ``lazy_ntk_test_loss``: KRR
    with the initial feature kernel / NTK and the same ridge. ``residual``: relative
    stationarity ``|d theta/dt| / |theta|`` at the end; ``identity_error``: relative distance
    between the network output ``<z phi(h)>/gamma0`` on test points and ``f_test``.
    """

    f_train: np.ndarray
    f_test: np.ndarray
    f_test_se: np.ndarray
    kernel: np.ndarray
    kernel_test: np.ndarray
    kernel_init: np.ndarray
    test_loss: float
    test_loss_se: float
    lazy_nngp_test_loss: float
    lazy_ntk_test_loss: float
    identity_error: float
    steps: int


def _population_flow(C, y, z, u, *, gamma0, lam, lr, max_steps, tol, act, anchor=None, coupling=0.0):
    """Run the single-site flow for all sampled neurons (u: hidden weights in data coordinates)
    for exactly ``max_steps`` steps; return the final relative stationarity.

    The (neurons x points) work arrays are allocated once and updated in place: the same
    arithmetic as allocating each step, about 3x faster on one core (fresh multi-MB arrays
    cost a page fault per page)."""
    S = len(z)
    c = coupling if anchor is not None else 0.0
    pull = coupling * anchor if anchor is not None else None
    u, z = np.array(u, dtype=float), np.array(z, dtype=float)
    h, ph, g = (np.empty((S, len(C))) for _ in range(3))
    fu = np.empty_like(u)
    gu = gz = np.zeros(0)
    fill = NONLINEARITIES[act].fill
    assert fill is not None
    for t in range(1, max_steps + 1):
        np.matmul(u, C.T, out=h)
        fill(h, ph, g)  # phi(h), phi'(h) in place
        delta = y - z @ ph / (gamma0 * S)
        g *= z[:, None]
        g *= delta
        g *= gamma0
        np.matmul(g, C, out=fu)  # force on u
        ph *= gamma0
        force_z = ph @ delta
        if t == max_steps:
            gu = fu - lam * u - (c * (u - anchor) if anchor is not None else 0.0)
            gz = force_z - lam * z
        # proximal (implicit) step for the linear decay and coupling terms: same fixed points, stable for stiff coupling
        if pull is not None:
            fu += pull
        fu *= lr
        fu += u
        np.divide(fu, 1 + lr * (lam + c), out=u)
        z = (z + lr * force_z) / (1 + lr * lam)
        if not (np.isfinite(z).all() and np.isfinite(u).all()):
            return u, z, np.inf, t
    res = float(np.sqrt((np.sum(gu**2) + np.sum(gz**2)) / (np.sum(u**2) + np.sum(z**2) + 1e-300)))
    return u, z, res, t


def _block_predictor(u, z, C, Ct, y, lam, act, gamma0):
    """Kernel, KRR predictor and network output of a population of neurons."""
    ph, pt = _phi(u @ C.T, act), _phi(u @ Ct.T, act)
    S = len(z)
    K, Kt = ph.T @ ph / S, pt.T @ ph / S
    return K, Kt, krr_predict(K, Kt, y, lam), z @ pt / (gamma0 * S), z @ ph / (gamma0 * S)


def _blocked(u, z, C, Ct, y, yt, lam, act, gamma0):
    K, Kt, f, f_net, f_tr = _block_predictor(u, z, C, Ct, y, lam, act, gamma0)
    idx = np.array_split(np.arange(len(z)), _BLOCKS)
    fb = np.array([_block_predictor(u[i], z[i], C, Ct, y, lam, act, gamma0)[2] for i in idx])
    f_se = fb.std(0, ddof=1) / np.sqrt(_BLOCKS)
    lb = np.array([_mse(yt, fi) for fi in fb]) if yt is not None else np.full(_BLOCKS, np.nan)
    return K, Kt, f, f_net, f_tr, f_se, float(lb.std(ddof=1) / np.sqrt(_BLOCKS))


def _lazy_losses(C, Ct, y, yt, lam, act, rng, samples):
    u0 = rng.standard_normal((samples, C.shape[1]))
    h, ht = u0 @ C.T, u0 @ Ct.T
    ph, pt, dh, dt = _phi(h, act), _phi(ht, act), _dphi(h, act), _dphi(ht, act)
    Phi, Phit = ph.T @ ph / samples, pt.T @ ph / samples
    G, Gt = dh.T @ dh / samples, dt.T @ dh / samples
    nngp = _mse(yt, krr_predict(Phi, Phit, y, lam))
    ntk = _mse(yt, krr_predict(Phi + G * (C @ C.T), Phit + Gt * (Ct @ C.T), y, lam))
    return Phi, nngp, ntk


def _check_flow(gamma0, weight_decay, lr, max_steps, samples, activation, tol, seed):
    return (check_real(gamma0, "gamma0", lo=0.0, lo_closed=False),
            check_real(weight_decay, "weight_decay", lo=0.0, lo_closed=False),
            check_real(lr, "lr", lo=0.0, lo_closed=False), check_int(max_steps, "max_steps", lo=1, hi=10**7),
            check_int(samples, "samples", lo=2 * _BLOCKS, hi=_MAX_SAMPLES), check_choice(activation, "activation", ACTIVATIONS),
            check_real(tol, "tol", lo=0.0, lo_closed=False), check_int(seed, "seed", lo=0))


def _antithetic_init(rng, S, r):
    u = rng.standard_normal((S // 2, r))
    z = rng.standard_normal(S // 2)
    return np.vstack([u, u]), np.concatenate([z, -z])


def _finish(where, res, tol, t, max_steps):
    if not np.isfinite(res):
        msg = f"the flow diverged at step {t} (lower lr)"
        warn_not_converged(where, msg)
        return False, "diverged", msg
    if res < tol:
        return True, "converged", f"stationary to {res:.2e} after {t} steps"
    msg = f"relative stationarity {res:.2e} > tol {tol:g} after {max_steps} steps"
    warn_not_converged(where, msg)
    return False, "max_iter", msg


def weight_decay_two_layer(X, y, X_test, y_test=None, *, gamma0: float, weight_decay: float, lr: float = 0.02,
                           max_steps: int = 5000, samples: int = 8192, activation: str = "tanh", tol: float = 1e-4,
                           seed: int = 0) -> AdaptiveKernelResult:
    """Infinite-width weight-decay fixed point of a two-layer network and its adaptive kernel predictor.

    Equation (eq:adaptive_kernel.krr): ``f(x) = Phi(x, X) [Phi(X, X) + lambda I]^{-1} y``,
      ``Phi = <phi(h) phi(h)^T>`` over the fixed-point measure of the single-site flow
      ``dh/dt = gamma0 z K (phi'(h) Delta) - lambda h, dz/dt = gamma0 phi(h).Delta - lambda z``.

    "Adaptive kernel predictors from feature-learning infinite limits of neural networks".
    ``samples`` neurons (hidden weights in the data coordinates, so ``h ~ N(0, K)`` at start;
    readout signs antithetic so that ``f(0) = 0`` as at infinite width) are run for
    ``max_steps`` steps of size ``lr`` (explicit in the data term, implicit in the decay: the
    discretisation of the simulator's proximal gradient descent, with the same fixed points as
    the flow); the result is ``converged`` when the final relative stationarity
    ``|d theta/dt| / |theta|`` is below ``tol``, else ``max_iter``. Test points enter only
    through the kernel. Monte Carlo errors from 8 blocks of neurons.
    """
    X, y, Xt, yt = _data(X, y, X_test, y_test)
    gamma0, lam, lr, max_steps, S, act, tol, seed = _check_flow(gamma0, weight_decay, lr, max_steps, samples,
                                                                activation, tol, seed)
    C, Ct = _coords(X, Xt)
    rng = np.random.default_rng(seed)
    u, z = _antithetic_init(rng, S, C.shape[1])
    Phi0, nngp, ntk = _lazy_losses(C, Ct, y, yt, lam, act, rng, S)
    u, z, res, t = _population_flow(C, y, z, u, gamma0=gamma0, lam=lam, lr=lr, max_steps=max_steps, tol=tol,
                                    act=act)
    converged, status, msg = _finish("weight_decay_two_layer", res, tol, t, max_steps)
    if status == "diverged":
        nan = np.full(len(Xt), np.nan)
        return AdaptiveKernelResult(converged=False, status=status, iterations=t, residual=float("inf"), message=msg,
                                    f_train=np.full(len(X), np.nan), f_test=nan, f_test_se=nan, kernel=Phi0 * np.nan,
                                    kernel_test=np.full((len(Xt), len(X)), np.nan), kernel_init=Phi0,
                                    test_loss=float("nan"), test_loss_se=float("nan"), lazy_nngp_test_loss=nngp,
                                    lazy_ntk_test_loss=ntk, identity_error=float("nan"), steps=t)
    K, Kt, f, f_net, f_tr, f_se, loss_se = _blocked(u, z, C, Ct, y, yt, lam, act, gamma0)
    ident = float(np.linalg.norm(f_net - f) / max(np.linalg.norm(f), 1e-300))
    return AdaptiveKernelResult(converged=converged, status=status, iterations=t, residual=res, message=msg,
                                f_train=f_tr, f_test=f, f_test_se=f_se, kernel=K, kernel_test=Kt, kernel_init=Phi0,
                                test_loss=_mse(yt, f), test_loss_se=loss_se, lazy_nngp_test_loss=nngp,
                                lazy_ntk_test_loss=ntk, identity_error=ident, steps=t,
                                extras={"samples": S, "spread_of_readouts": float(np.std(z))})


# =========================================================================== weight decay, deep linear
@dataclass(frozen=True, kw_only=True)
class DeepLinearResult(SolverResult):
    """A deep linear network's fixed point (weight decay or Bayesian).

    ``f_train``/``f_test`` the predictor; ``kernels`` the hidden-layer kernels ``Phi^l``
    (l = 1..L) on the training points followed by the test points; ``test_loss`` the test MSE
    (NaN without ``y_test``); ``ridge`` the effective ridge of KRR with the input kernel that
    gives the same predictor (weight decay) or ``1/beta`` (Bayesian).
    """

    f_train: np.ndarray
    f_test: np.ndarray
    kernels: tuple
    test_loss: float
    ridge: float


def weight_decay_deep_linear(X, y, X_test, y_test=None, *, gamma0: float, weight_decay: float,
                             depth: int = 1) -> DeepLinearResult:
    """Weight-decay fixed point of a deep linear mean-field network (``depth`` hidden layers).

    Equation (eq:adaptive_kernel.deep_linear): ``f = K (K + mu I)^{-1} y`` with
      ``mu = lambda (gamma0 |v|)^(q-2), q = 2/(L+1)``, ``|v|^2 = Delta^T K Delta / mu^2``,
      ``Delta = y - f``; layer kernels ``Phi^l(x, x') = (gamma0 |v|)^{l q} (v.x)(v.x') / (D |v|^2)``.

    "Adaptive kernel predictors from feature-learning infinite limits of neural networks".
    Stationarity makes every layer rank one and balanced (the random initial parts decay at
    rate lambda), so the network computes ``f(x) = v.x / sqrt(D)`` with the regulariser
    ``lambda (L+1) (gamma0 |v|)^q / (2 gamma0^2)``: KRR with the input kernel and an
    adaptive ridge ``mu = lambda gamma0^(q-2) |v|^(q-2)``. The largest root of the scalar
    equation in ``|v|`` is returned (the stable non-trivial branch that gradient flow from a
    random start reaches); ``f = 0`` when there is none (the weight decay wins).
    """
    X, y, Xt, yt = _data(X, y, X_test, y_test)
    gamma0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    lam = check_real(weight_decay, "weight_decay", lo=0.0, lo_closed=False)
    L = check_int(depth, "depth", lo=1, hi=64)
    D = X.shape[1]
    K = X @ X.T / D
    evals, evecs = np.linalg.eigh(K)
    evals = np.clip(evals, 0.0, None)
    a = evecs.T @ y
    q = 2.0 / (L + 1)

    pos = evals > evals.max() * 1e-12

    def vnorm(mu):  # |v| of KRR with ridge mu (directions with zero input variance carry none)
        return float(np.sqrt(np.sum(evals[pos] * a[pos] ** 2 / (evals[pos] + mu) ** 2)))

    def gap(logr):  # log|v(mu(r))| - log r: positive below a stable root, negative above it
        r = np.exp(logr)
        return np.log(max(vnorm(lam * (gamma0 * r) ** (q - 2)), 1e-300)) - logr

    vmax = float(np.sqrt(np.sum(a[pos] ** 2 / evals[pos])))
    roots = _roots(gap, np.log(vmax) - 30.0, np.log(vmax) + 1.0, n=800, down_only=True)
    M = len(X) + len(Xt)
    if not roots:
        zeros = (np.zeros((M, M)),) * L
        return DeepLinearResult(converged=True, status="closed_form", iterations=0, residual=0.0,
                                message="no non-trivial fixed point: f = 0", f_train=np.zeros(len(X)),
                                f_test=np.zeros(len(Xt)), kernels=zeros, test_loss=_mse(yt, 0.0), ridge=float("inf"))
    r = float(np.exp(max(roots)))
    mu = lam * (gamma0 * r) ** (q - 2)
    Xall = np.vstack([X, Xt])
    delta = y - krr_predict(K, K, y, mu)
    v = X.T @ delta / (np.sqrt(D) * mu)
    g = Xall @ v / (np.sqrt(D) * np.linalg.norm(v))
    kernels = tuple((gamma0 * r) ** (l * q) * np.outer(g, g) for l in range(1, L + 1))
    f_all = Xall @ v / np.sqrt(D)
    resid = abs(np.linalg.norm(v) - r) / r
    return DeepLinearResult(converged=True, status="closed_form", iterations=800, residual=float(resid),
                            message=f"root |v| = {r:.6g} of {len(roots)} non-trivial", f_train=f_all[:len(X)],
                            f_test=f_all[len(X):], kernels=kernels, test_loss=_mse(yt, f_all[len(X):]), ridge=mu,
                            extras={"roots": [float(np.exp(x)) for x in roots]})


# =========================================================================== Bayesian
@dataclass(frozen=True, kw_only=True)
class BayesianResult(DeepLinearResult):
    """Bayesian min-max predictor: as :class:`DeepLinearResult` plus Monte Carlo errors
    ``f_test_se`` (zeros for the closed form) and ``delta`` the training residual."""

    f_test_se: np.ndarray
    delta: np.ndarray


def _bayes_common(X, y, X_test, y_test, gamma0, beta):
    X, y, Xt, yt = _data(X, y, X_test, y_test)
    return (X, y, Xt, yt, check_real(gamma0, "gamma0", lo=0.0, lo_closed=False),
            check_real(beta, "beta", lo=0.0, lo_closed=False))


def _roots(fn, lo, hi, n=600, down_only=False):
    grid = np.linspace(lo, hi, n)
    vals = np.array([fn(g) for g in grid])
    roots = [brentq(fn, grid[i], grid[i + 1], xtol=1e-14) for i in range(n - 1)
             if np.isfinite(vals[i]) and np.isfinite(vals[i + 1]) and np.sign(vals[i]) != np.sign(vals[i + 1])
             and (not down_only or vals[i] > 0)]
    return roots


def bayesian_deep_linear(X, y, X_test, y_test=None, *, gamma0: float, beta: float, depth: int = 1) -> BayesianResult:
    """Saddle point of the Bayesian deep linear network's min-max action (infinite width), closed form.

    Equation (eq:adaptive_kernel.bayes_linear): ``rho^(1/L) = 1 + beta^2 gamma0^2 rho Delta^T K Delta``,
      ``Delta = (I + beta rho K)^{-1} y``, ``f(x) = beta rho K(x, X) Delta``,
      ``Phi^l = K + (rho^(l/L) - 1) (K Delta)(K Delta)^T / (Delta^T K Delta)``.

    "Adaptive kernel predictors from feature-learning infinite limits of neural networks".
    Posterior ``prior N(0, I) x exp(-(beta gamma0^2 N/2) sum (y - f)^2)``. At infinite width the
    log-partition function is ``N`` times the saddle value of ``S = -(beta gamma0^2/2) y^T (I +
    beta Phi^L)^{-1} y + sum_l [tr(Phi_hat^l Phi^l) - log det(I + Phi^{l-1} Phi_hat^l)] / 2``
    (``Phi^0 = K``), whose stationarity gives ``Phi^l = (I + Phi^{l-1} Phi_hat^l)^{-1} Phi^{l-1}``,
    ``Phi_hat^l = Phi_hat^{l+1} (I + Phi^l Phi_hat^{l+1})^{-1}``, ``Phi_hat^L = -beta^2 gamma0^2
    Delta Delta^T``. Every conjugate is then a multiple of ``Delta Delta^T`` and every kernel
    ``K`` plus a multiple of ``(K Delta)(K Delta)^T``, growing by the same factor per layer:
    the system collapses to the scalar equation above (largest root returned), and the
    predictor is KRR with the input kernel and ridge ``1/(beta rho)``. For whitened inputs and
    unit ``y`` it gives ``y^T Phi^l y = (1 - chi)^l``, ``chi = -gamma0^2 c/(1/beta + c)^2``,
    ``c = (1 - chi)^L``.
    """
    X, y, Xt, yt, gamma0, beta = _bayes_common(X, y, X_test, y_test, gamma0, beta)
    L = check_int(depth, "depth", lo=1, hi=64)
    P = len(X)
    Xall = np.vstack([X, Xt])
    K = X @ X.T / X.shape[1]
    Kc = Xall @ X.T / X.shape[1]
    evals, evecs = np.linalg.eigh(K)
    evals = np.clip(evals, 0.0, None)
    a = evecs.T @ y

    def energy(rho):
        return float(np.sum(evals * a**2 / (1 + beta * rho * evals) ** 2))

    def gap(logrho):
        rho = np.exp(logrho)
        return np.exp(logrho / L) - 1.0 - (beta * gamma0) ** 2 * rho * energy(rho)

    hi = L * np.log(2.0 + beta * gamma0**2 * float(np.sum(a**2)) / 4)
    roots = _roots(gap, 0.0, hi + 1.0)
    rho = float(np.exp(max(roots))) if roots else 1.0
    delta = evecs @ (a / (1 + beta * rho * evals))
    e = float(delta @ K @ delta)
    m = Kc @ delta
    kernels = tuple(Xall @ Xall.T / X.shape[1] + (rho ** (l / L) - 1) * np.outer(m, m) / max(e, 1e-300)
                    for l in range(1, L + 1))
    f_all = beta * rho * m
    resid = abs(gap(np.log(rho))) if roots else float("inf")
    ok = bool(roots)
    msg = (f"rho = {rho:.6g} (largest of {len(roots)} roots)" if ok else "no root of the saddle-point equation found")
    if not ok:
        warn_not_converged("bayesian_deep_linear", msg)
    return BayesianResult(converged=ok, status="closed_form" if ok else "max_iter", iterations=0, residual=float(resid),
                          message=msg, f_train=f_all[:P], f_test=f_all[P:], kernels=kernels,
                          test_loss=_mse(yt, f_all[P:]), ridge=1.0 / (beta * rho), f_test_se=np.zeros(len(Xt)),
                          delta=delta, extras={"rho": rho, "roots": [float(np.exp(r)) for r in roots]})


def bayesian_two_layer(X, y, X_test, y_test=None, *, gamma0: float, beta: float, activation: str = "tanh",
                       samples: int = 100000, damping: float = 0.3, tol: float = 1e-8, max_iter: int = 2000,
                       seed: int = 0) -> BayesianResult:
    """Saddle point of the Bayesian two-layer (nonlinear) network by adaptive importance sampling.

    Equation (eq:adaptive_kernel.bayes_two_layer): ``Phi = E[w phi(h) phi(h)^T] / E[w]``,
      ``w(h) = exp(beta^2 gamma0^2 (Delta . phi(h))^2 / 2)``, ``h ~ N(0, K)``, ``Delta = (I + beta Phi)^{-1} y``.

    "Adaptive kernel predictors from feature-learning infinite limits of neural networks".
    Integrating out the readout leaves each hidden neuron's preactivations tilted by ``w(h)``
    (the two-layer case of :func:`bayesian_deep_linear`'s action). The tilted average is
    estimated by importance sampling from a Gaussian proposal whose covariance is matched
    to the tilted one at every iteration; the standard normal draws are fixed (common random
    numbers), so the damped iteration is deterministic. Predictor ``f = Phi(x, X) [Phi +
    I/beta]^{-1} y``; Monte Carlo errors from 8 blocks; the effective sample size is in
    ``extras``. With ``activation="linear"`` it must reproduce :func:`bayesian_deep_linear`.
    """
    X, y, Xt, yt, gamma0, beta = _bayes_common(X, y, X_test, y_test, gamma0, beta)
    act = check_choice(activation, "activation", ACTIVATIONS)
    S = check_int(samples, "samples", lo=2 * _BLOCKS, hi=_MAX_SAMPLES)
    damping = check_real(damping, "damping", lo=0.0, hi=1.0, lo_closed=False)
    tol = check_real(tol, "tol", lo=0.0, lo_closed=False)
    max_iter = check_int(max_iter, "max_iter", lo=1, hi=10**5)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    C, Ct = _coords(X, Xt)
    Call, P, r = np.vstack([C, Ct]), len(X), C.shape[1]
    xi = rng.standard_normal((S, r))
    A = np.eye(r)

    def tilted(delta, A, idx=slice(None)):
        Lc = np.linalg.cholesky(A)
        u = xi[idx] @ Lc.T
        ph = _phi(u @ Call.T, act)
        logw = -0.5 * np.sum(u**2, 1) + 0.5 * np.sum(xi[idx] ** 2, 1) + (beta * gamma0) ** 2 * (ph[:, :P] @ delta) ** 2 / 2
        w = np.exp(logw - logw.max())
        w /= w.sum()
        return (ph * w[:, None]).T @ ph, (u * w[:, None]).T @ u, w

    delta = y.copy()
    Phi, A_new, w = tilted(delta, A)
    res, it = np.inf, 0
    for it in range(1, max_iter + 1):
        delta = np.linalg.solve(np.eye(P) + beta * Phi[:P, :P], y)
        new, A_new, w = tilted(delta, A)
        res = float(np.linalg.norm(new - Phi) / np.linalg.norm(Phi))
        Phi = (1 - damping) * Phi + damping * new
        A = (1 - damping) * A + damping * (A_new + A_new.T) / 2
        if not np.isfinite(res) or res < tol:
            break
    delta = np.linalg.solve(np.eye(P) + beta * Phi[:P, :P], y)
    f_all = krr_predict(Phi[:P, :P], Phi[:, :P], y, 1.0 / beta)
    fb = np.array([krr_predict(Kb[:P, :P], Kb[P:, :P], y, 1.0 / beta)
                   for Kb in (tilted(delta, A, i)[0] for i in np.array_split(np.arange(S), _BLOCKS))])
    ess = float(1.0 / np.sum(w**2))
    status = "converged" if res < tol else ("diverged" if not np.isfinite(res) else "max_iter")
    msg = f"residual {res:.2e} after {it} iterations, effective sample size {ess:.0f} of {S}"
    if status != "converged":
        warn_not_converged("bayesian_two_layer", msg)
    return BayesianResult(converged=status == "converged", status=status, iterations=it, residual=res, message=msg,
                          f_train=f_all[:P], f_test=f_all[P:], kernels=(Phi,), test_loss=_mse(yt, f_all[P:]),
                          ridge=1.0 / beta, f_test_se=fb.std(0, ddof=1) / np.sqrt(_BLOCKS), delta=delta,
                          extras={"effective_sample_size": ess})


# =========================================================================== transfer
@dataclass(frozen=True, kw_only=True)
class TransferResult(SolverResult):
    """Target-task fixed points after source pretraining, one per elastic coupling.

    ``couplings`` (n,); ``test_loss``/``test_loss_se`` (n,) the target test MSE of the adaptive
    predictor and its Monte Carlo error (8 blocks); ``f_test`` (n, P') and ``f_test_se``;
    ``statuses`` (n,) each target phase's status; ``source_kernel_test_loss``: KRR with the
    source fixed point's kernel on the target (the ``delta -> infinity`` limit).
    """

    couplings: np.ndarray
    f_test: np.ndarray
    f_test_se: np.ndarray
    test_loss: np.ndarray
    test_loss_se: np.ndarray
    statuses: tuple
    source_kernel_test_loss: float


def transfer_two_layer(X_source, y_source, X, y, X_test, y_test=None, *, gamma0: float, weight_decay: float,
                       couplings, lr: float = 0.02, max_steps: int = 5000, samples: int = 8192,
                       activation: str = "tanh", tol: float = 1e-4, seed: int = 0) -> TransferResult:
    """Infinite-width transfer from a source to a target task with elastic weight coupling.

    Equation (eq:adaptive_kernel.transfer): ``dh/dt = gamma0 z K (phi'(h) Delta_t) - lambda h - delta (h - h_s)``,
      ``dz/dt = gamma0 phi(h).Delta_t - lambda z``, ``f = Phi_t(x, X) [Phi_t + lambda I]^{-1} y``.

    "Transfer Learning in Infinite Width Feature Learning Networks". Source: the population
    of :func:`weight_decay_two_layer` run on ``(X_source, y_source)`` to its fixed point
    ``(h_s, z_s)`` (preactivations tracked on every point). Target, for each ``delta`` in
    ``couplings``: the same neurons start at the source state and follow the flow above (the
    elastic coupling pulls hidden weights to the source ones; the readout has plain weight
    decay). The readout identity makes the predictor KRR with the target kernel ``Phi_t``;
    ``delta -> infinity`` gives KRR with the source kernel, ``delta = 0`` weight-decay
    training from the source weights. ``status`` is the worst over the phases.
    """
    Xs, ys, _, _ = check_regression_data(X_source, y_source)
    X, y, Xt, yt = _data(X, y, X_test, y_test)
    if Xs.shape[1] != X.shape[1]:
        fail("X_source", f"of shape (any, {X.shape[1]}) to match X", Xs)
    gamma0, lam, lr, max_steps, S, act, tol, seed = _check_flow(gamma0, weight_decay, lr, max_steps, samples,
                                                                activation, tol, seed)
    deltas = np.atleast_1d(np.asarray(couplings, dtype=float))
    if deltas.ndim != 1 or deltas.size == 0 or not np.all(np.isfinite(deltas)) or np.any(deltas < 0):
        fail("couplings", "a non-empty sequence of finite non-negative numbers", couplings)
    Cs, C, Ct = _coords(Xs, X, Xt)
    u, z = _antithetic_init(np.random.default_rng(seed), S, C.shape[1])
    us, zs, res, t = _population_flow(Cs, ys, z, u, gamma0=gamma0, lam=lam, lr=lr, max_steps=max_steps, tol=tol,
                                      act=act)
    statuses = [_finish("transfer_two_layer (source)", res, tol, t, max_steps)[1]]
    out: list = []
    total = t
    f_src = _block_predictor(us, zs, C, Ct, y, lam, act, gamma0)[2]
    for d in deltas:
        ut, zt, res_t, tt = _population_flow(C, y, zs, us, gamma0=gamma0, lam=lam, lr=lr, max_steps=max_steps,
                                             tol=tol, act=act, anchor=us, coupling=float(d))
        st = _finish(f"transfer_two_layer (target, delta={d:g})", res_t, tol, tt, max_steps)[1]
        statuses.append(st)
        total, res = total + tt, max(res, res_t)
        if st == "diverged":
            out.append((np.full(len(Xt), np.nan),) * 2 + (float("nan"),) * 2)
            continue
        _, _, f, _, _, f_se, loss_se = _blocked(ut, zt, C, Ct, y, yt, lam, act, gamma0)
        out.append((f, f_se, _mse(yt, f), loss_se))
    status = max(statuses, key=["converged", "max_iter", "diverged"].index)
    msg = "phases (source, then each coupling): " + ", ".join(statuses)
    return TransferResult(converged=status == "converged", status=status, iterations=total, residual=float(res),
                          message=msg, couplings=deltas, f_test=np.array([o[0] for o in out]),
                          f_test_se=np.array([o[1] for o in out]), test_loss=np.array([o[2] for o in out]),
                          test_loss_se=np.array([o[3] for o in out]), statuses=tuple(statuses[1:]),
                          source_kernel_test_loss=_mse(yt, f_src))
