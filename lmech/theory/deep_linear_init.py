"""Deep linear networks trained from random initialization: exact and reduced dynamics.

Theory side of "Deep Linear Network Training Dynamics from Random Initialization: Data, Width,
Depth, and Hyperparameter Transfer" (Bordelon & Pehlevan), in the conventions of
:mod:`lmech.sim.deep_linear_init`: inputs ``x ~ N(0, diag(lam))`` in ``D`` dimensions, teacher
``y = beta_* . x / sqrt(D)`` with ``|beta_*|^2 = D``, a width-``N`` network with ``L`` hidden
layers, muP readout ``sqrt(D) / (gamma0 N)`` and raw step ``lr gamma0^2 N grad``. The network is
the linear map ``f(x) = beta . x / sqrt(D)``; its population loss is
``Lpop = (1/2D) sum_k lam_k (beta_k - beta*_k)^2``.

What is here (each solver's docstring gives its equation):

* :func:`finite_population_gd` -- the exact finite-size matrix dynamics: gradient descent on
  the population loss (= online SGD at infinite batch), deterministic given the random
  initialization; Monte Carlo over initializations with standard errors. The ground truth at
  any ``D/N``.
* :func:`whitened_online` -- the reduced theory for whitened online SGD at infinite width
  (``N -> inf`` at fixed ``D``). By rotation invariance the population problem is full-batch GD
  on the ``D`` points ``sqrt(D) e_k``; at infinite width the directions orthogonal to ``beta_*``
  never move, so it reduces *exactly* to the deep-linear DMFT of one training point with
  ``K^x = 1``, ``y = 1``, richness ``gamma0`` and step ``lr`` (solved by
  :func:`lmech.theory.dmft.deep_linear`), and ``Lpop(t) = (1 - f(t))^2 / 2``.
* :func:`two_layer_population` -- infinite-width two-layer (``L = 1``) dynamics on any diagonal
  covariance: at ``N = inf`` the neurons ``(w_i, W_i)`` stay jointly Gaussian under the linear
  GD map, so the second moments ``q = <w^2>``, ``m = <w W>``, ``Q = <W W^T>`` close exactly.
* :func:`repeated_data` -- infinite-width dynamics when ``P`` samples are reused every step
  (full-batch GD): the deep-linear DMFT on the sampled data, with the ``D`` basis points as
  test points (their loss *is* the population loss), averaged over sampled data sets.
* :func:`lazy_power_law` and :func:`power_law_task` -- the static-kernel (lazy, ``N = inf``)
  learning curve on a power-law covariance and its decay exponent ``(b - 1) / a``.

Not pinned down: the paper's proportional-limit DMFT (``N, D, P -> inf`` at fixed ratios),
whose two-time equations for the random-init product spectrum and the data-repetition response
could not be reconstructed from the available text. Here the ``D/N`` corrections are given
exactly by :func:`finite_population_gd` (Monte Carlo over initializations), and the data
average of :func:`repeated_data` is a Monte Carlo average, not a closed equation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import check_array, check_choice, check_int, check_real, fail
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.dmft.deep_linear import deep_linear

__all__ = ["InitDynamicsResult", "finite_population_gd", "whitened_online", "two_layer_population",
           "repeated_data", "lazy_power_law", "power_law_task"]

_BLOWUP = 1e6


@dataclass(frozen=True, kw_only=True)
class InitDynamicsResult(SolverResult):
    """Population (test) loss along training, ``steps = 0..T``.

    ``loss`` is the population loss; ``stderr`` its Monte Carlo standard error (zeros for a
    deterministic solver); ``train_loss`` (repeated data only) the loss on the reused samples.
    """

    steps: np.ndarray
    loss: np.ndarray
    stderr: np.ndarray
    train_loss: np.ndarray | None = None


def _common(depth, gamma0, lr, steps):
    return (check_int(depth, "depth", lo=1, hi=1000), check_real(gamma0, "gamma0", lo=0.0),
            check_real(lr, "lr", lo=0.0, lo_closed=False), check_int(steps, "steps", lo=1, hi=10**5))


def _finish(steps, loss, se, where, train=None, n=0) -> InitDynamicsResult:
    bad = ~np.isfinite(loss) | (loss > _BLOWUP)
    if bad.any():
        msg = f"the dynamics diverged at step {int(np.argmax(bad))} (lower lr)"
        warn_not_converged(where, msg)
        return InitDynamicsResult(steps=steps, loss=np.where(bad, np.inf, loss), stderr=se, train_loss=train,
                                  converged=False, status="diverged", iterations=int(steps[-1]),
                                  residual=float("nan"), message=msg)
    res = float(np.max(se)) if n > 1 else float("nan")
    return InitDynamicsResult(steps=steps, loss=loss, stderr=se, train_loss=train, converged=True,
                              status="closed_form", iterations=int(steps[-1]), residual=res,
                              message="exact recursion" + (f"; Monte Carlo over {n} draws" if n > 1 else ""))


def finite_population_gd(*, dim: int, width: int, depth: int, gamma0: float, lr: float, steps: int,
                         spectrum=None, target=None, residual: bool = False, center: bool = False,
                         n_inits: int = 16, seed: int = 0) -> InitDynamicsResult:
    """Exact GD of finite muP deep linear networks on the population loss, Monte Carlo over inits.

    Equation (eq:deep_linear_init.population_gd): ``W^l <- W^l - lr gamma0^2 N dLpop/dW^l,
        dLpop/dW^l = -(s / sqrt(N)) b^{l+1} a^{l T},  g = lam * (beta_* - beta) / D,
        a^1 = W^0 g,  a^{l+1} = M^l a^l / sqrt(N),  b^{L+1} = w,  b^l = M^{l T} b^{l+1} / sqrt(N)``

    with ``M^l = W^l`` (plain) or ``sqrt(N) I + c W^l`` (residual, ``c = 1/sqrt(L)``), ``s =
    sqrt(D)/(gamma0 N)``, ``beta = s W^{0T} b^1``, ``dLpop/dW^0 = -s b^1 g^T`` and readout gradient
    ``-s a^L``. Explicit forward/backward products of the matrices
    (no autodiff): deterministic given the initialization, which is drawn ``n_inits`` times.
    ``center=True`` subtracts the initial end-to-end vector ``beta(0)`` (the random initial function).
    """
    D = check_int(dim, "dim", lo=1, hi=10**4)
    N = check_int(width, "width", lo=1, hi=10**4)
    L, g0, eta, T = _common(depth, gamma0, lr, steps)
    if not 0 < g0 <= 1e6:
        fail("gamma0", "in (0, 1e6] at finite width", gamma0)
    S = check_int(n_inits, "n_inits", lo=1, hi=10**5)
    lam = np.ones(D) if spectrum is None else check_array(spectrum, "spectrum", shape=(D,), nonnegative=True)
    rng = np.random.default_rng(seed)
    bstar = rng.standard_normal(D) if target is None else check_array(target, "target", shape=(D,))
    if target is None:
        bstar *= np.sqrt(D) / np.linalg.norm(bstar)
    n_hidden = L if residual else L - 1
    c = 1.0 / np.sqrt(n_hidden) if residual and n_hidden else 1.0
    s, raw = np.sqrt(D) / (g0 * N), eta * g0 ** 2 * N
    W0 = rng.standard_normal((S, N, D))
    Ws = [rng.standard_normal((S, N, N)) for _ in range(n_hidden)]
    w = rng.standard_normal((S, N))

    def mat(W, v, transpose):  # M^l v / sqrt(N) with the residual identity
        out = np.einsum("sji,sj->si" if transpose else "sij,sj->si", W, v) / np.sqrt(N)
        return v + c * out if residual else out

    loss = np.empty((S, T + 1))
    for t in range(T + 1):
        b = [w]
        for W in reversed(Ws):
            b.insert(0, mat(W, b[0], True))
        beta = s * np.einsum("sji,sj->si", W0, b[0])
        if t == 0:
            beta0 = beta.copy() if center else np.zeros_like(beta)
        beta = beta - beta0
        loss[:, t] = 0.5 * np.sum(lam * (beta - bstar) ** 2, -1) / D
        if t == T or not np.all(np.isfinite(loss[:, t])) or loss[:, t].max() > _BLOWUP:
            loss[:, t + 1:] = np.inf
            break
        g = lam * (bstar - beta) / D
        a = [np.einsum("sij,sj->si", W0, g)]
        for W in Ws:
            a.append(mat(W, a[-1], False))
        W0 += raw * s * b[0][:, :, None] * g[:, None, :]
        for k, W in enumerate(Ws):
            W += raw * s * (c if residual else 1.0) / np.sqrt(N) * b[k + 1][:, :, None] * a[k][:, None, :]
        w += raw * s * a[-1]
    mean = loss.mean(0)
    se = loss.std(0, ddof=1) / np.sqrt(S) if S > 1 else np.zeros(T + 1)
    return _finish(np.arange(T + 1), mean, se, "finite_population_gd", n=S)


def whitened_online(*, depth: int, gamma0: float, lr: float, steps: int) -> InitDynamicsResult:
    """Infinite-width population loss of online SGD (infinite batch) on whitened inputs, muP.

    Equation (eq:deep_linear_init.whitened): ``Lpop(t) = (1 - f(t))^2 / 2``, ``f`` = the
        deep-linear DMFT (eq:dmft.deep_linear) of one point with ``K^x = 1``, ``y = 1``

    Exact reduction (module docstring): rotation invariance plus the decoupling of the
    directions orthogonal to ``beta_*`` at ``N = inf``. For ``depth = 1`` and gradient flow it
    is the closed ODE ``df/dt = 2 sqrt(1 + gamma0^2 f^2) (1 - f)``. Cost O(L T^3).
    """
    L, g0, eta, T = _common(depth, gamma0, lr, steps)
    r = deep_linear(np.ones((1, 1)), np.ones(1), depth=L, gamma0=g0, lr=eta, steps=T, check=False)
    loss = np.full(T + 1, np.inf)
    loss[:len(r.train_loss)] = r.train_loss
    return _finish(np.arange(T + 1), loss, np.zeros(T + 1), "whitened_online")


def two_layer_population(*, spectrum, target, gamma0: float, lr: float, steps: int,
                         closure: str = "moments") -> InitDynamicsResult:
    """Infinite-width GD of a two-layer muP linear network on the population loss, any diagonal covariance.

    Equation (eq:deep_linear_init.two_layer): ``Q' = Q + a (m g^T + g m^T) + a^2 q g g^T,
        m' = m + a (q + Q) g + a^2 (m.g) g,  q' = q + 2 a m.g + a^2 g^T Q g,
        beta = sqrt(D) m / gamma0,  g = lam * (beta_* - beta),  a = lr gamma0 / sqrt(D)``

    from ``Q = I``, ``m = 0``, ``q = 1``: the GD step of every neuron, ``W_i += a w_i g``,
    ``w_i += a W_i . g``, is linear, so the Gaussian neuron measure at ``N = inf`` is carried by
    its second moments exactly (``closure="moments"``, cost O(T D^2)). Under gradient flow the
    moments obey the exact invariants ``Q = I + m m^T / (1 + q)`` and ``q = sqrt(1 + |m|^2)``
    (differentiate both; they hold at ``m = 0``), so ``closure="flow"`` takes the Euler step
    ``beta += lr ((q + 1) g + m (m.g) / (1 + q))`` with ``m = gamma0 beta / sqrt(D)``: gradient
    flow to O(lr), cost O(T D). ``gamma0 = 0`` is the lazy map ``beta += 2 lr g``.
    """
    lam = check_array(spectrum, "spectrum", ndim=1, nonnegative=True, min_size=1)
    D = lam.size
    bstar = check_array(target, "target", shape=(D,))
    _, g0, eta, T = _common(1, gamma0, lr, steps)
    check_choice(closure, "closure", ("moments", "flow"))
    a = eta * g0 / np.sqrt(D)
    Q, beta, q = np.eye(D) if closure == "moments" else None, np.zeros(D), 1.0
    loss = np.full(T + 1, np.inf)
    for t in range(T + 1):
        loss[t] = 0.5 * np.sum(lam * (bstar - beta) ** 2) / D
        if not np.isfinite(loss[t]) or loss[t] > _BLOWUP:
            break
        g = lam * (bstar - beta)
        m = g0 * beta / np.sqrt(D)
        if Q is None:
            q = np.sqrt(1.0 + m @ m)
            beta = beta + eta * ((q + 1.0) * g + m * (m @ g) / (1.0 + q))
            continue
        Qg, mg = Q @ g, m @ g
        beta = beta + eta * (q * g + Qg + a * mg * g)
        Q, q = Q + a * (np.outer(m, g) + np.outer(g, m)) + a * a * q * np.outer(g, g), q + 2 * a * mg + a * a * g @ Qg
    return _finish(np.arange(T + 1), loss, np.zeros(T + 1), "two_layer_population")


def repeated_data(*, dim: int, n_samples: int, depth: int, gamma0: float, lr: float, steps: int,
                  n_datasets: int = 8, seed: int = 0, samples=None, target=None) -> InitDynamicsResult:
    """Infinite-width full-batch GD on ``P`` reused whitened samples, averaged over data sets.

    Equation (eq:deep_linear_init.repeated): ``Lpop(t) = E_X (1/2D) sum_k (beta*_k - f_k(t))^2``,
        ``f`` = the deep-linear DMFT (eq:dmft.deep_linear) with train points ``X`` (``y = X beta_* /
        sqrt(D)``) and test points ``sqrt(D) e_k``, richness ``gamma0 / sqrt(D)``, step ``lr D``

    (the simulator's muP readout is ``1/(gamma N)`` with ``gamma = gamma0/sqrt(D)`` and its raw step
    ``lr gamma0^2 N = (lr D) gamma^2 N``). The test points form a scaled orthonormal basis, so
    their loss is the population loss exactly. ``stderr`` is over the ``n_datasets`` draws of
    ``(X, beta_*)``; ``samples`` (n_datasets, P, D) and ``target`` (D,) fix them instead (e.g. the
    simulator's). Cost O(n_datasets L T^3 (P + D)^3).
    """
    D = check_int(dim, "dim", lo=1, hi=512)
    P = check_int(n_samples, "n_samples", lo=1, hi=4096)
    L, g0, eta, T = _common(depth, gamma0, lr, steps)
    n = check_int(n_datasets, "n_datasets", lo=1, hi=10**4)
    rng = np.random.default_rng(seed)
    Xs = None if samples is None else check_array(samples, "samples", shape=(n, P, D))
    bt = None if target is None else check_array(target, "target", shape=(D,))
    test, train = np.full((n, T + 1), np.inf), np.full((n, T + 1), np.inf)
    for i in range(n):
        b = rng.standard_normal(D) if bt is None else bt
        if bt is None:
            b *= np.sqrt(D) / np.linalg.norm(b)
        X = rng.standard_normal((P, D)) if Xs is None else Xs[i]
        r = deep_linear(X, X @ b / np.sqrt(D), depth=L, gamma0=g0 / np.sqrt(D), lr=eta * D, steps=T,
                        X_test=np.sqrt(D) * np.eye(D), y_test=b, check=False)
        n_ok = len(r.train_loss)  # shorter when the dynamics diverged
        test[i, :n_ok], train[i, :n_ok] = np.asarray(r.test_loss), r.train_loss
    se = test.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(T + 1)
    return _finish(np.arange(T + 1), test.mean(0), se, "repeated_data", train=train.mean(0), n=n)


def power_law_task(dim: int, spectrum_exponent: float, target_exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """Covariance ``lam_k ~ k^-a`` (``sum lam = D``) and teacher with ``lam_k beta*_k^2 ~ k^-b`` (``Var y = 1``), a, b <= 30."""
    D = check_int(dim, "dim", lo=1, hi=10**6)
    a = check_real(spectrum_exponent, "spectrum_exponent", lo=0.0, hi=30.0)
    b = check_real(target_exponent, "target_exponent", lo=0.0, hi=30.0)
    k = np.arange(1, D + 1, dtype=float)
    lam = k ** -a
    lam *= D / lam.sum()
    power = k ** -b
    power *= D / power.sum()
    return lam, np.sqrt(power / lam)


def lazy_power_law(*, spectrum, target, depth: int, lr: float, steps: int) -> InitDynamicsResult:
    """Lazy (static kernel ``(L+1) I``, ``N = inf``) learning curve and its power-law exponent.

    Equation (eq:deep_linear_init.lazy): ``Lpop(t) = (1/2D) sum_k lam_k beta*_k^2
        (1 - lr (L+1) lam_k)^{2t}  ~  t^{-(b-1)/a}``  for ``lam_k ~ k^-a``, ``lam_k beta*_k^2 ~ k^-b``

    The exponent ``(b - 1)/a`` (from ``sum_k k^-b exp(-2 lr (L+1) t k^-a)``) is in
    ``extras["exponent"]`` when :func:`power_law_task` made the inputs (else NaN).
    """
    lam = check_array(spectrum, "spectrum", ndim=1, nonnegative=True, min_size=1)
    bstar = check_array(target, "target", shape=(lam.size,))
    L, _, eta, T = _common(depth, 0.0, lr, steps)
    t = np.arange(T + 1)
    decay = (1 - eta * (L + 1) * lam)[None, :] ** (2 * t[:, None])
    loss = 0.5 * (lam * bstar ** 2 * decay).sum(1)
    loss = loss / lam.size
    k = np.arange(1, lam.size + 1)
    a = -np.polyfit(np.log(k), np.log(lam), 1)[0]
    b = -np.polyfit(np.log(k), np.log(lam * bstar ** 2), 1)[0]
    out = _finish(t, loss, np.zeros(T + 1), "lazy_power_law")
    out.extras["exponent"] = (b - 1) / a if a > 0 else float("nan")
    return out
