"""Grokking as a lazy -> rich transition, and late-time margin growth ("hidden progress").

Two papers:

* "Grokking as the Transition from Lazy to Rich Training Dynamics" (Kumar, Bordelon, Gershman,
  Pehlevan). A two-layer network with a polynomial activation learns a quadratic target by plain
  full-batch gradient descent; the output scale ``alpha`` sets laziness. Our instance (own choice,
  with the paper's ingredients: quadratic single-index target, weakly nonlinear activation, fixed
  readouts, output multiplier, learning rate ``eta N / alpha^2``)::

      x ~ N(0, I_D),   h_i = w_i . x / sqrt(D),   phi(h) = h + (eps / 2) h^2,
      f(x) = (alpha / N) sum_i a_i phi(h_i),   a_i = +-1 fixed, neurons in pairs (w, +1), (w, -1)
      y(x) = lin (b . x) + (b . x)^2 / 2,   |b| = 1.

  Because phi is quadratic, ``f(x) = l . x + x^T A x / 2`` exactly, with
  ``l = alpha/(N sqrt D) sum_i a_i w_i`` and ``A = alpha eps/(N D) sum_i a_i w_i w_i^T``; the
  test loss on Gaussian inputs is a closed form in (l, A) (:func:`quadratic_test_loss`). The GD
  update of each neuron is *linear* in its weights, ``w_i <- w_i - (eta/alpha) a_i (g + eps G w_i)``
  with the global ``g = (1/P) sum Delta_mu x_mu / sqrt D``, ``G = (1/P) sum Delta_mu x_mu x_mu^T / D``
  (``Delta = f - y`` on the training set), so the first and second moments of the pair variables
  ``s = (w_+ + w_-)/2``, ``d = (w_+ - w_-)/2`` obey a closed recursion (:func:`grokking_dynamics`):
  an exact description of the network at any finite training set, infinite width (or exactly at
  finite width from the network's own initial moments).

* "Do Mice Grok? Glimpses of Hidden Progress During Overtraining in Sensory Cortex" (Kumar,
  Bordelon, Pehlevan et al.). After training accuracy saturates, gradient descent on the logistic
  loss of separable data keeps increasing the normalised margin towards the hard-margin SVM
  (:func:`max_margin`), slowly: ``w(tau) = w_hat log tau + w_tilde + o(1)`` gives the normalised
  margin's approach ``gamma* - gamma(tau) ~ c / log tau`` (:func:`margin_asymptotics`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from lmech._validation import MAX_SIZE, check_array, check_int, check_real, check_scale, fail
from lmech.kernels._alignment import centered_alignment_unchecked
from lmech.results import SolverResult, warn_not_converged

__all__ = [
    "quadratic_test_loss",
    "GrokkingDynamics",
    "grokking_dynamics",
    "KernelRegressionLoss",
    "ntk_krr_test_loss",
    "first_crossing",
    "MaxMargin",
    "max_margin",
    "MarginAsymptotics",
    "margin_asymptotics",
    "reversal_steps",
]


# Inputs beyond this magnitude would overflow float64 in the kernels (|x|^4) and the quadratic forms.
_MAX_IN = 1e30


def _teacher(teacher, D: int) -> np.ndarray:
    b = check_array(teacher, "teacher", ndim=1, shape=(D,))
    nb = float(np.linalg.norm(b))
    if not np.isclose(nb, 1.0, rtol=1e-6):
        fail("teacher", "a unit vector", f"norm {nb:.6g}")
    return b


def quadratic_test_loss(l, A, teacher, linear: float = 0.0) -> np.ndarray:
    """Exact Gaussian test MSE of ``f(x) = l.x + x^T A x / 2`` on ``y = lin b.x + (b.x)^2 / 2``.

    Equation (eq:grokking.test_loss): ``E_test = |l - lin b|^2 + ((tr A')^2 + 2 ||A'||_F^2) / 4,  A' = A - b b^T``

    It follows from ``E[x^T M x] = tr M`` and ``Var(x^T M x) = 2 ||M||_F^2`` for symmetric M and
    ``x ~ N(0, I)`` (odd moments vanish, so the linear and quadratic parts do not mix). In terms of
    the sufficient statistics ``l.b, |l|^2, tr A, b^T A b, ||A||_F^2``:
    ``|l|^2 - 2 lin l.b + lin^2 + ((tr A - 1)^2 + 2 (||A||_F^2 - 2 b^T A b + 1)) / 4``.

    ``l`` has shape (..., D) and ``A`` (..., D, D) (symmetrised here); returns shape (...).
    """
    l = check_array(l, "l", ndim=(1, 2, 3, 4), max_abs=_MAX_IN)
    A = check_array(A, "A", ndim=(2, 3, 4, 5), max_abs=_MAX_IN)
    D = l.shape[-1]
    if A.shape[-2:] != (D, D) or A.shape[:-2] != l.shape[:-1]:
        fail("A", f"of shape {l.shape[:-1] + (D, D)} to match `l`", A)
    b = _teacher(teacher, D)
    lin = check_real(linear, "linear", lo=-1e6, hi=1e6)
    A = 0.5 * (A + np.swapaxes(A, -1, -2))
    Ap = A - np.outer(b, b)
    dl = l - lin * b
    tr = np.trace(Ap, axis1=-2, axis2=-1)
    return np.sum(dl * dl, axis=-1) + 0.25 * (tr ** 2 + 2.0 * np.sum(Ap * Ap, axis=(-2, -1)))


def first_crossing(times, curve, threshold) -> np.ndarray:
    """First time at which ``curve`` (shape (..., n_t)) is <= ``threshold`` (shape (...)); inf if never."""
    t = check_array(times, "times", ndim=1, min_size=1)
    c = check_array(curve, "curve", ndim=(1, 2, 3, 4), finite=False)
    if c.shape[-1] != len(t):
        fail("curve", f"of last dimension {len(t)} (the length of `times`)", c)
    thr = check_array(threshold, "threshold", finite=False)[..., None]
    below = c <= thr
    idx = np.argmax(below, axis=-1)
    return np.where(below.any(axis=-1), t[idx], np.inf)


@dataclass(frozen=True, kw_only=True)
class GrokkingDynamics(SolverResult):
    """Training and test curves of the two-layer polynomial network (:func:`grokking_dynamics`).

    Attributes
    ----------
    alphas : ndarray (n_alpha,)
    times : ndarray (n_rec,)
        GD steps at which the curves are recorded.
    train_loss, test_loss : ndarray (n_alpha, n_rec)
        Mean squared error on the training set and the exact Gaussian test MSE.
    alignment : ndarray (n_alpha, n_rec)
        Centred kernel-target alignment ``y_c^T K y_c / (||K_c||_F |y_c|^2)`` of the NTK on the
        training set.
    statistics : dict of ndarray (n_alpha, n_rec)
        ``l.b``, ``|l|^2``, ``tr A``, ``b^T A b``, ``||A||_F^2``.
    t_train, t_test : ndarray (n_alpha,)
        First recorded step with train loss <= ``train_fraction`` x its initial value, and test
        loss <= ``test_fraction`` x its initial value (inf if never).
    delay : ndarray (n_alpha,)
        ``t_test / t_train``.
    l, A : ndarray
        Final function coefficients, shapes (n_alpha, D) and (n_alpha, D, D).
    """

    alphas: np.ndarray
    times: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    alignment: np.ndarray
    statistics: dict
    t_train: np.ndarray
    t_test: np.ndarray
    delay: np.ndarray
    l: np.ndarray
    A: np.ndarray


def grokking_dynamics(X, teacher, alphas, *, eps: float, lr: float, steps: int, linear: float = 0.0,
                      record_every: int = 10, train_fraction: float = 0.01, test_fraction: float = 0.1,
                      init_weights=None) -> GrokkingDynamics:
    """Exact moment recursion of GD on the two-layer polynomial network, infinite width.

    Equation (eq:grokking.moments): ``z' = T z + c,  S' = T S T^T + T z c^T + c z^T T^T + c c^T,
        T = [[I, -k eps G], [-k eps G, I]],  c = (0, -k g),  k = lr / alpha,  l = alpha dbar / sqrt D,  A = alpha eps (S_sd + S_ds) / D``

    ``z`` is the mean and ``S`` the second moment of the pair variables ``(s, d)`` over pairs,
    ``g = (1/P) sum_mu Delta_mu x_mu / sqrt D`` and ``G = (1/P) sum_mu Delta_mu x_mu x_mu^T / D`` the
    gradient statistics of the residual ``Delta = f - y`` on the training set ``X``. Infinite width
    starts from ``z = 0``, ``S = diag(I, 0)``; passing ``init_weights`` (the first neuron of each
    pair, shape (N/2, D)) starts from their empirical moments instead, which reproduces that
    finite network's GD exactly. The NTK (learning-rate normalised) is
    ``K(x, x') = (x.x'/D) [1 + eps (m.x + m.x')/sqrt D + eps^2 x^T M x' / D]`` with ``m = sbar``,
    ``M = S_ss + S_dd``. Laziness: the function-space speed is alpha-independent while the features
    move at rate ~ 1/alpha. Cost per step O(P D^2 + D^3) per alpha. Status ``closed_form`` (an exact
    recursion); ``diverged`` if the losses blow up (curves then hold inf from that point).
    """
    X = check_array(X, "X", ndim=2, min_size=1, max_abs=_MAX_IN)
    P, D = X.shape
    b = _teacher(teacher, D)
    al = check_array(alphas, "alphas", ndim=(0, 1), positive=True, min_size=1, max_abs=1e6).reshape(-1)
    if al.min() < 1e-6:
        fail("alphas", "at least 1e-6 (the step lr / alpha would overflow)", al)
    eps = check_real(eps, "eps", lo=0.0, hi=1e3)
    if P < 2:
        fail("X", "at least 2 rows (the alignment centres the labels)", X)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=1e6)
    steps = check_int(steps, "steps", lo=0, hi=10_000_000)
    every = check_int(record_every, "record_every", lo=1)
    lin = check_real(linear, "linear", lo=-1e6, hi=1e6)
    ftr = check_real(train_fraction, "train_fraction", lo=0.0, hi=1.0)
    fte = check_real(test_fraction, "test_fraction", lo=0.0, hi=1.0)
    if P * D * D * (steps + 1) * len(al) > 5e12 or D > 2000:
        fail("steps", "small enough that P D^2 steps n_alpha <= 5e12", steps)
    na = len(al)
    y = lin * (X @ b) + 0.5 * (X @ b) ** 2
    S = np.zeros((na, 2 * D, 2 * D))
    z = np.zeros((na, 2 * D))
    if init_weights is None:
        S[:, :D, :D] = np.eye(D)
    else:
        W0 = check_array(init_weights, "init_weights", ndim=2, shape=(None, D), min_size=D, max_abs=_MAX_IN)
        S[:, :D, :D] = W0.T @ W0 / len(W0)
        z[:, :D] = W0.mean(axis=0)
    q = X @ X.T / D
    XT = X.T
    k = lr / al
    a_l = (al / np.sqrt(D))[:, None]
    a_A = (al * eps / D)[:, None, None]
    times = np.arange(0, steps + 1, every)
    nrec = len(times)
    tr_loss, te_loss, align = (np.full((na, nrec), np.inf) for _ in range(3))
    names = ("l.b", "|l|^2", "tr A", "b^T A b", "||A||_F^2")
    stats = {n: np.full((na, nrec), np.nan) for n in names}
    diverged, r = False, 0
    l = np.zeros((na, D))
    A = np.zeros((na, D, D))
    for t in range(steps + 1):
        l = a_l * z[:, D:]
        Msd = S[:, :D, D:]
        A = a_A * (Msd + np.swapaxes(Msd, 1, 2))
        delta = l @ X.T + 0.5 * np.sum(np.matmul(X, A) * X, axis=-1) - y  # (na, P)
        if t % every == 0:
            loss = np.mean(delta ** 2, axis=1)
            if not np.all(np.isfinite(loss)) or np.any(loss > 1e12 * (1.0 + np.mean(y ** 2))):
                diverged = True
                break
            tr_loss[:, r] = loss
            te_loss[:, r] = quadratic_test_loss(l, A, b, lin)
            M = S[:, :D, :D] + S[:, D:, D:]
            m = z[:, :D]
            xm = X @ m.T / np.sqrt(D)  # (P, na)
            K = q * (1.0 + eps * (xm.T[:, :, None] + xm.T[:, None, :])
                     + eps ** 2 * np.matmul(np.matmul(X, M), XT) / D)
            align[:, r] = centered_alignment_unchecked(K, y, 0.0)  # 0 for constant labels or kernel
            lb, ll = l @ b, np.sum(l * l, axis=1)
            vals = (lb, ll, np.trace(A, axis1=1, axis2=2), np.einsum("i,aij,j->a", b, A, b), np.sum(A * A, axis=(1, 2)))
            for n, v in zip(names, vals):
                stats[n][:, r] = v
            r += 1
        if t == steps:
            break
        g = delta @ X / (P * np.sqrt(D))  # (na, D)
        kG = np.matmul(XT * (delta * (k * eps / (P * D))[:, None])[:, None, :], X)  # (lr/alpha) eps G
        T = np.broadcast_to(np.eye(2 * D), (na, 2 * D, 2 * D)).copy()
        T[:, :D, D:] = -kG
        T[:, D:, :D] = -kG
        Tz = np.matmul(T, z[:, :, None])[..., 0]
        c = np.zeros((na, 2 * D))
        c[:, D:] = -k[:, None] * g
        TST = np.matmul(np.matmul(T, S), np.swapaxes(T, 1, 2))
        Tc = Tz[:, :, None] * c[:, None, :]
        S = TST + Tc + np.swapaxes(Tc, 1, 2) + c[:, :, None] * c[:, None, :]
        z = Tz + c
    t_train = first_crossing(times, tr_loss, ftr * tr_loss[:, 0])
    t_test = first_crossing(times, te_loss, fte * te_loss[:, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        delay = t_test / t_train
    msg = "exact moment recursion"
    if diverged:
        msg = f"losses blew up by step {t}; curves hold inf after it"
        warn_not_converged("grokking_dynamics", msg)
    return GrokkingDynamics(
        converged=not diverged, status="diverged" if diverged else "closed_form", iterations=t, residual=np.nan,
        message=msg, alphas=al, times=times, train_loss=tr_loss, test_loss=te_loss, alignment=align,
        statistics=stats, t_train=t_train, t_test=t_test, delay=delay, l=l, A=A)


@dataclass(frozen=True, kw_only=True)
class KernelRegressionLoss(SolverResult):
    """Test loss of kernel regression with the initial NTK (:func:`ntk_krr_test_loss`).

    Attributes
    ----------
    test_loss : float or ndarray
        Exact Gaussian test MSE of the kernel predictor (an array over ``steps`` when given).
    train_loss : float or ndarray
        Its training MSE (0 up to round-off for the ridgeless interpolant below the interpolation
        threshold ``P < D + D (D + 1) / 2``).
    l, A : ndarray
        The predictor's coefficients ``f(x) = l.x + x^T A x / 2``.
    """

    test_loss: float | np.ndarray
    train_loss: float | np.ndarray
    l: np.ndarray
    A: np.ndarray


def ntk_krr_test_loss(X, teacher, *, eps: float, linear: float = 0.0, ridge: float = 0.0, lr: float = 1.0,
                      steps=None, init_weights=None) -> KernelRegressionLoss:
    """Kernel regression with the network's infinite-width initial NTK: the lazy (alpha -> inf) network.

    Equation (eq:grokking.krr): ``K(x, x') = q + eps^2 q^2,  q = x.x'/D,  f = K(x, X) c,  c = (K + ridge P I)^+ y
        (GD for t steps: c_t = K^+ (1 - (1 - lr K / P)^t) y),  l = sum_mu c_mu x_mu / D,  A = 2 eps^2 sum_mu c_mu x_mu x_mu^T / D^2``

    The ridgeless limit is the pseudo-inverse (minimum-RKHS-norm interpolant), where GD on the
    linearised network from ``f = 0`` converges; with ``steps`` (an array of GD step counts, learning
    rate ``lr`` as in :func:`grokking_dynamics`; ridge 0) it is the linearised network after that many
    steps, i.e. the alpha -> inf limit of the training curve. The test loss is the closed form
    :func:`quadratic_test_loss` of the predictor's coefficients. ``init_weights`` (the first neuron of
    each pair, (N/2, D)) uses that finite network's initial NTK
    ``K = q [1 + eps (m.x + m.x')/sqrt D + eps^2 x^T M x'/D]`` (``m``, ``M`` the weights' mean and second
    moment) instead, still a quadratic predictor. Status ``closed_form``.
    """
    X = check_array(X, "X", ndim=2, min_size=1, max_abs=_MAX_IN)
    P, D = X.shape
    if P > 20_000:
        fail("X", "at most 20000 rows (a dense P x P solve)", X)
    b = _teacher(teacher, D)
    eps = check_real(eps, "eps", lo=0.0, hi=1e3)
    lin = check_real(linear, "linear", lo=-1e6, hi=1e6)
    ridge = check_real(ridge, "ridge", lo=0.0, hi=1e12)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=1e6)
    y = lin * (X @ b) + 0.5 * (X @ b) ** 2
    q = X @ X.T / D
    m, M = np.zeros(D), np.eye(D)
    if init_weights is not None:
        W0 = check_array(init_weights, "init_weights", ndim=2, shape=(None, D), min_size=D, max_abs=_MAX_IN)
        m, M = W0.mean(axis=0), W0.T @ W0 / len(W0)
    xm = X @ m / np.sqrt(D)
    w, V = np.linalg.eigh(q * (1 + eps * (xm[:, None] + xm[None, :]) + eps ** 2 * (X @ M @ X.T) / D)
                          + ridge * P * np.eye(P))
    keep = w > max(w.max(), 1e-300) * P * 1e-12
    w, V = w[keep], V[:, keep]
    if steps is None:
        gain = (1.0 / w)[None, :]
    else:
        t = check_array(steps, "steps", ndim=(0, 1), nonnegative=True).reshape(-1)
        if ridge:
            fail("ridge", "0 when `steps` is given", ridge)
        gain = (1.0 - (1.0 - lr * w[None, :] / P) ** t[:, None]) / w[None, :]
    c = (gain * (V.T @ y)) @ V.T  # (n_t, P): f = sum_mu c_mu K(x, x_mu)
    l = (c * (1 + eps * xm)) @ X / D
    u = (eps / D ** 1.5) * np.outer(np.ones(P), m) + (eps ** 2 / D ** 2) * (X @ M)  # (P, D): K's x-quadratic part
    B = np.einsum("tp,pi,pj->tij", c, X, u)
    A = B + np.swapaxes(B, 1, 2)
    f = l @ X.T + 0.5 * np.sum(np.matmul(X, A) * X, axis=-1)
    test, train = quadratic_test_loss(l, A, b, lin), np.mean((f - y) ** 2, axis=-1)
    one = steps is None or np.ndim(steps) == 0
    return KernelRegressionLoss(converged=True, status="closed_form", iterations=0, residual=np.nan,
                                message="pseudo-inverse kernel regression" if steps is None
                                else "kernel gradient descent",
                                test_loss=float(test[0]) if one else test, train_loss=float(train[0]) if one else train,
                                l=l[0] if one else l, A=A[0] if one else A)


@dataclass(frozen=True, kw_only=True)
class MaxMargin(SolverResult):
    """Hard-margin linear SVM through the origin (:func:`max_margin`).

    Attributes
    ----------
    w_hat : ndarray (D,)
        ``argmin |w|`` subject to ``y_mu w.x_mu >= 1``; ``w_hat = sum_mu alpha_mu y_mu x_mu``.
    dual : ndarray (P,)
        The dual variables ``alpha >= 0`` (positive on the support vectors).
    margin : float
        The maximal normalised margin ``gamma* = 1 / |w_hat|``.
    support : ndarray of bool (P,)
    """

    w_hat: np.ndarray
    dual: np.ndarray
    margin: float
    support: np.ndarray


def max_margin(X, y, *, tol: float = 1e-9, max_iter: int = 10_000) -> MaxMargin:
    """Hard-margin SVM (no bias) by its dual, polished on the support set.

    Equation (eq:mice.svm): ``max_alpha>=0 sum alpha - |sum_mu alpha_mu y_mu x_mu|^2 / 2,  w_hat = sum alpha_mu y_mu x_mu,  gamma* = 1/|w_hat|``

    The bound-constrained dual is solved with L-BFGS-B; then the support set ``S`` (alpha > 0) is
    polished exactly by solving ``Z_S Z_S^T alpha_S = 1`` (``Z = y x``). ``residual`` is the KKT
    violation ``max(1 - min_mu y_mu w.x_mu, max_mu |alpha_mu (y_mu w.x_mu - 1)|)``; status
    ``converged`` when it is below ``tol``, else ``max_iter`` (also for data that are not linearly
    separable through the origin: the dual is then unbounded).
    """
    X = check_array(X, "X", ndim=2, min_size=1, max_abs=_MAX_IN)
    P, D = X.shape
    if P > 5000:
        fail("X", "at most 5000 rows (dense dual QP)", X)
    y = check_array(y, "y", ndim=1, shape=(P,))
    if not np.all(np.abs(y) == 1):
        fail("y", "labels in {-1, +1}", y)
    tol = check_real(tol, "tol", lo=0.0, lo_closed=False, hi=1.0)
    cap = check_int(max_iter, "max_iter", lo=1, hi=MAX_SIZE)
    Z = X * y[:, None]
    Q = Z @ Z.T

    def fun(al):
        Qa = Q @ al
        return 0.5 * al @ Qa - al.sum(), Qa - 1.0
    opt = optimize.minimize(fun, np.full(P, 1e-3), jac=True, method="L-BFGS-B", bounds=[(0, None)] * P,
                            options={"maxiter": cap, "ftol": 1e-15, "gtol": 1e-12})
    alpha = np.maximum(opt.x, 0.0)
    sv = alpha > 1e-8 * max(alpha.max(), 1e-300)
    if sv.any():
        sol = np.linalg.lstsq(Q[np.ix_(sv, sv)], np.ones(sv.sum()), rcond=None)[0]
        if np.all(sol > 0):
            alpha = np.zeros(P)
            alpha[sv] = sol
    w = Z.T @ alpha
    m = Z @ w
    res = float(max(1.0 - m.min(), np.max(np.abs(alpha * (m - 1.0)))))
    ok = bool(np.isfinite(res) and res < tol and np.linalg.norm(w) > 0)
    msg = "KKT conditions met" if ok else f"KKT violation {res:.3g} >= tol (data not separable through the origin?)"
    if not ok:
        warn_not_converged("max_margin", msg)
    nw = float(np.linalg.norm(w))
    return MaxMargin(converged=ok, iterations=int(opt.nit), residual=res, message=msg, w_hat=w, dual=alpha,
                     margin=1.0 / nw if nw > 0 else np.inf, support=alpha > 0)


@dataclass(frozen=True, kw_only=True)
class MarginAsymptotics(SolverResult):
    """Late-time logistic-loss GD on separable data (:func:`margin_asymptotics`).

    Attributes
    ----------
    steps : ndarray
    margin : ndarray
        Predicted normalised margin ``min_mu y_mu w.x_mu / |w|`` at each step.
    max_margin : float
        ``gamma*`` (the limit).
    gap_coefficient : float
        ``c`` in ``gamma* - gamma ~ c / log tau`` (the slow, logarithmic approach).
    weights : ndarray (n, D)
        ``w_hat log tau + w_tilde_S`` (the part of ``w_tilde`` in the support span).
    svm : MaxMargin
    """

    steps: np.ndarray
    margin: np.ndarray
    max_margin: float
    gap_coefficient: float
    weights: np.ndarray
    svm: MaxMargin


def margin_asymptotics(X, y, steps, *, lr: float) -> MarginAsymptotics:
    """Normalised margin of GD on the mean logistic loss at late times (implicit bias to max margin).

    Equation (eq:mice.margin): ``w(tau) = w_hat log tau + w_tilde + o(1),  y_n x_n.w_tilde = -log(P alpha_n) (n in S),
        gamma(tau) = (log tau - log(P alpha_max)) / (|w_hat| log tau - sum_n alpha_n log(P alpha_n) / |w_hat|)``

    with ``tau = lr k`` after k GD steps on ``(1/P) sum log(1 + exp(-y w.x))``. Substituting the ansatz
    into gradient flow with ``log(1 + e^-u) ~ e^-u`` makes the support vectors' terms balance
    ``w_hat / tau`` exactly when ``exp(-z_n.w_tilde)/P`` equals the SVM dual variable ``alpha_n``; only
    ``w_hat.w_tilde = -sum alpha_n log(P alpha_n)`` enters ``|w|`` to O(1/log tau), so the prediction is
    exact up to O(1/log^2 tau) (non-support points and the component of ``w_tilde`` outside the
    support span enter only there). Hence ``gamma* - gamma ~ c / log tau`` with
    ``c = gamma* (log(P alpha_max) - gamma*^2 sum alpha_n log(P alpha_n))``. Status ``closed_form``
    (``max_iter`` if the SVM solve fails).
    """
    k = check_array(steps, "steps", ndim=1, positive=True, min_size=1, max_abs=1e300)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=1e6)
    svm = max_margin(X, y)
    P = len(X)
    if not svm.converged:  # not separable: no asymptotics (max_margin has warned)
        nan = np.full(len(k), np.nan)
        return MarginAsymptotics(converged=False, iterations=0, residual=svm.residual, message=svm.message, steps=k,
                                 margin=nan, max_margin=np.nan, gap_coefficient=np.nan,
                                 weights=np.full((len(k), X.shape[1]), np.nan), svm=svm)
    al = svm.dual[svm.support]
    L = np.log(lr * k)
    nw = 1.0 / svm.margin
    a_max = float(np.log(P * al.max()))
    b = float(np.sum(al * np.log(P * al)))
    gamma = (L - a_max) / (nw * L - b / nw)
    Zs = (X * np.asarray(y, dtype=float)[:, None])[svm.support]
    w_tilde = np.linalg.lstsq(Zs, -np.log(P * al), rcond=None)[0]
    c = svm.margin * (a_max - svm.margin ** 2 * b)
    return MarginAsymptotics(converged=True, status="closed_form", iterations=0, residual=svm.residual,
                             message=svm.message, steps=k, margin=gamma,
                             max_margin=svm.margin, gap_coefficient=float(c),
                             weights=np.outer(L, svm.w_hat) + w_tilde, svm=svm)


def reversal_steps(X, y, w, *, lr: float, fraction: float = 0.5) -> float:
    """Predicted GD steps to relabel ``fraction`` of the training set after the labels are reversed.

    Equation (eq:mice.reversal): ``j_n = y_n x_n.w / (lr y_n x_n.zbar),  zbar = (1/P) sum_mu y_mu x_mu,  steps = quantile_fraction(j_n)``

    While the old margins are large the reversed-label logistic gradient is saturated,
    ``dw/dk ~ -lr zbar``, so point n changes side after ``j_n`` steps; more overtraining (larger
    ``w``) means a slower reversal. Returns a float (inf if fewer than ``fraction`` of the points
    move towards the new side).
    """
    X = check_array(X, "X", ndim=2, min_size=1, max_abs=_MAX_IN)
    P, D = X.shape
    y = check_array(y, "y", ndim=1, shape=(P,))
    if not np.all(np.abs(y) == 1):
        fail("y", "labels in {-1, +1}", y)
    check_scale(X, "X")
    w = check_array(w, "w", ndim=1, shape=(D,), max_abs=_MAX_IN)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=1e6)
    frac = check_real(fraction, "fraction", lo=0.0, hi=1.0, lo_closed=False)
    Z = X * y[:, None]
    speed = lr * (Z @ Z.mean(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = np.where(speed > 0, np.maximum(Z @ w, 0.0) / speed, np.inf)
    return float(np.quantile(j, frac, method="higher"))
