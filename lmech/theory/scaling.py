"""Random-feature model of neural scaling laws: loss(t, N, P), ensembles, exponents.

Model [B. Bordelon, A. Atanasov, C. Pehlevan, "A Dynamical Model of Neural Scaling Laws"]:
latent features x in R^M with covariance Lambda = diag(lam_k), target y = w* . x (+ label
noise of variance ``noise``), a fixed Gaussian projection F in R^{N x M}, model features
psi = F x / sqrt(N), predictor f = a . psi, trained from a = 0 by full-batch gradient flow
(or gradient descent with a small learning rate) on (1/2P) sum_mu (f(x_mu) - y_mu)^2.
Conventions used throughout this module:

* ``eigenvalues[k] = lam_k`` and ``target_power[k] = lam_k w*_k^2`` (the target's power in
  mode k; the initial loss is ``sum(target_power)``).
* Time ``t`` is *learning rate x steps* (gradient-flow time of the parameters); the loss is
  L = E_x (f(x) - w* . x)^2 (noise-free test target). Note the factor 2: errors decay as
  e^{-2 t H} in the loss.
* ``N=None`` means infinitely many features (no width bottleneck), ``P=None`` means
  infinitely many samples (online / population gradient flow).

Equations (Laplace domain; kappa_n(s) solves kappa = s + (kappa/n) sum lam/(lam + kappa),
see :mod:`lmech.theory.laplace`):

(6.1) finite N, P = inf:  L(t) = sum_k p_k h_k(2t),
      ``h_k(tau) = InvLap[ kappa_N(s) / (s (lam_k + kappa_N(s))) ](tau)``  ("transfer function").
(6.2) ensemble of E projections: L_E(t) = Lbar(t) + (L(t) - Lbar(t))/E, Lbar = sum_k p_k h_k(t)^2.
(6.3) N = inf, finite P (two-point deterministic equivalent, double inversion at (t, t)):
      L(t) = InvLap_{s,s'}[ kappa kappa'/(s s') sum_k p_k/((lam_k+kappa)(lam_k+kappa')) / (1 - g) ],
      g = (1/P) sum_k lam_k^2/((lam_k+kappa)(lam_k+kappa')),  kappa = kappa_P(s), kappa' = kappa_P(s');
      label noise adds (noise/P) InvLap_{s,s'}[ T(s,s')/(s s') ] with
      T = (kappa/s)[sum lam/(lam+kappa) - kappa' sum lam/((lam+kappa)(lam+kappa')) / (1 - g)];
      train loss  ``L_tr(t) = InvLap_s[ sum_k p_k/(lam_k + kappa_P(s)) + noise/kappa_P(s) ](2t)``.
(6.4) finite N and P: conditional on F this is (6.3) on the N features with covariance
      Sigma_F = F Lambda F^T / N, target a* = Sigma_F^{-1} F Lambda w*/sqrt(N) and extra label
      noise L_inf(N|F) = w*^T Lambda w* - a*^T Sigma_F a*; averaged over draws of F.

Scaling exponents for lam_k ~ k^{-b}, p_k ~ k^{-a} (a > 1): L ~ t^{-(a-1)/b},
L_inf(N) ~ N^{-min(a-1, b)}, ridgeless L(P) ~ P^{-min(a-1, 2b)}; compute-optimal
allocations follow from balancing the time and width terms at fixed C = N t.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_MAGNITUDE, check_array, check_int, check_real, check_scale, fail
from lmech.fits import PowerLawFit, fit_power_law
from lmech.results import SolverResult, warn_not_converged
from lmech.theory.kappa import solve_kappa
from lmech.theory.laplace import solve_kappa_complex, talbot_nodes, talbot_sum

__all__ = [
    "RFCurve",
    "rf_loss_curve",
    "rf_transfer",
    "width_bottleneck",
    "data_bottleneck",
    "ScalingExponents",
    "rf_exponents",
    "ComputeOptimal",
    "compute_optimal",
    "ComputeFrontier",
    "compute_frontier",
    "PowerLawFit",
    "fit_power_law",
]


# --------------------------------------------------------------------------- validation
def _spectrum(eigenvalues, target_power):
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, nonnegative=True, min_size=1)
    if not np.any(lam > 0):
        fail("eigenvalues", "not all zero", lam)
    p = check_array(target_power, "target_power", ndim=1, nonnegative=True)
    if p.shape != lam.shape:
        fail("target_power", f"of shape {lam.shape} (one entry per eigenvalue)", p)
    if np.any((lam == 0) & (p > 0)):
        fail("target_power", "zero where the eigenvalue is zero (p_k = lam_k w*_k^2)", p)
    keep = lam > 0
    return lam[keep], p[keep]


def _times(t, name="t"):
    t = check_array(t, name, ndim=(0, 1), positive=True, min_size=1, max_abs=MAX_MAGNITUDE)
    return check_scale(np.atleast_1d(t), name, each=True)


def _size(x, name):
    if x is None:
        return None
    return check_real(x, name, lo=1)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True, kw_only=True)
class RFCurve(SolverResult):
    """Expected losses of the random-feature model along training time.

    Attributes
    ----------
    t : ndarray, shape (T,)
        Gradient-flow time (learning rate x steps).
    loss : ndarray, shape (T,)
        Expected test loss E(f - w*.x)^2 (noise-free test target); ensemble loss if
        ``ensemble > 1``.
    train_loss : ndarray, shape (T,) or None
        Expected training loss (1/P) sum (f - y)^2 (only for finite P).
    bias, variance : ndarray, shape (T,) or None
        Split of ``loss`` into the noise-free part and the label-noise part (finite P only;
        for finite N and P the width-bottleneck residual is counted in ``variance``).
    floor : float
        t -> inf limit of the test loss where it is known in closed form (the width
        bottleneck L_inf(N) for P = inf; the ridgeless learning curve for N = inf); None when
        both N and P are finite (no closed form: read the late-time ``loss`` instead).
    N, P : float or None
        Width and sample count (None = infinite).
    ensemble : int
    """

    t: np.ndarray
    loss: np.ndarray
    train_loss: np.ndarray | None = None
    bias: np.ndarray | None = None
    variance: np.ndarray | None = None
    floor: float | None = None
    N: float | None = None
    P: float | None = None
    ensemble: int = 1


# --------------------------------------------------------------------------- kappa at nodes
def _kappa_at(lam, n, s):
    """kappa_n at Talbot nodes s (T, J): upper-half continuation from the real node."""
    res = solve_kappa_complex(lam, n, s)
    return res.kappa, res


def rf_transfer(eigenvalues, N, tau, *, M: int = 32) -> np.ndarray:
    """Per-mode transfer functions h_k(tau) of a width-N random-feature model.

    ``h_k(tau) = InvLap[kappa_N(s) / (s (lam_k + kappa_N(s)))](tau)`` is the projection-averaged
    error factor of mode k: E_F[e^{-tau H}] u0 = h(tau) * u0 for gradient flow of the
    whitened error u with H = Lambda^{1/2} F^T F Lambda^{1/2} / N (Bordelon, Atanasov,
    Pehlevan, "A Dynamical Model of Neural Scaling Laws").

    Parameters
    ----------
    eigenvalues : array_like, shape (K,)
        Feature covariance eigenvalues (> 0).
    N : float
        Number of random features (>= 1).
    tau : array_like, shape (T,)
        Times at which to evaluate (tau = t for the mean predictor, 2 t for the loss).
    M : int
        Talbot nodes.

    Returns
    -------
    ndarray, shape (T, K)
    """
    lam = check_array(eigenvalues, "eigenvalues", max_abs=MAX_MAGNITUDE, ndim=1, positive=True, min_size=1)
    N = check_real(N, "N", lo=1)
    tau = _times(tau, "tau")
    nodes = talbot_nodes(tau, M)
    kap, res = _kappa_at(lam, N, nodes.s)
    out = np.empty((len(tau), len(lam)))
    chunk = max(1, int(2e7 // (nodes.s.shape[1] * len(lam))))
    for i in range(0, len(tau), chunk):
        sl = slice(i, i + chunk)
        k = kap[sl][..., None]
        vals = k / (nodes.s[sl][..., None] * (lam + k))
        sub = talbot_nodes(tau[sl], M)
        out[sl] = talbot_sum(sub, vals)
    return out


def _width_curve(lam, p, N, t, ensemble, M):
    nodes = talbot_nodes(2.0 * t, M)
    kap, res = _kappa_at(lam, N, nodes.s)
    # F(s) = sum_k p_k kappa / (s (lam_k + kappa))
    vals = (kap / nodes.s) * np.sum(p / (lam + kap[..., None]), axis=-1)
    loss = talbot_sum(nodes, vals)
    converged, residual = res.converged, res.residual
    if ensemble > 1:
        h = rf_transfer(lam, N, t, M=M)
        lbar = h**2 @ p
        loss = lbar + (loss - lbar) / ensemble
    floor = width_bottleneck(lam, p, N)
    return RFCurve(
        t=t, loss=loss, floor=floor, N=N, P=None, ensemble=ensemble,
        converged=converged, iterations=res.iterations, residual=residual,
        message=res.message,
    )


def _data_terms(lam, p, P, t, noise, M):
    """(6.3): test bias, test noise variance and train loss for N = inf, finite P."""
    T = len(t)
    bias = np.empty(T)
    var = np.empty(T)
    up = talbot_nodes(t, M)
    full = talbot_nodes(t, M, full=True)
    kap_u, res = _kappa_at(lam, P, up.s)
    kap_f = np.concatenate([kap_u, np.conj(kap_u[:, 1:])], axis=1)
    lam2 = lam**2
    for i in range(T):
        R1 = 1.0 / (lam + kap_u[i][:, None])          # (J, K)
        R2 = 1.0 / (lam + kap_f[i][:, None])          # (2J-1, K)
        g = (R1 * lam2) @ R2.T / P                    # (J, 2J-1)
        A = (R1 * p) @ R2.T
        k1 = kap_u[i][:, None]
        k2 = kap_f[i][None, :]
        s1 = up.s[i][:, None]
        s2 = full.s[i][None, :]
        Fb = k1 * k2 / (s1 * s2) * A / (1.0 - g)
        w2 = full.weights[i] * np.exp(t[i] * full.s[i])
        w1 = up.weights[i] * np.exp(t[i] * up.s[i])
        inner_b = Fb @ w2 * full.scale[i]
        bias[i] = (np.sum(w1 * inner_b) * up.scale[i]).real
        if noise > 0:
            S1 = R1 @ lam                              # (J,)
            C = (R1 * lam) @ R2.T                      # (J, 2J-1)
            Tss = (k1 / s1) * (S1[:, None] - k2 * C / (1.0 - g))
            inner_v = (Tss / (s1 * s2)) @ w2 * full.scale[i]
            var[i] = noise / P * (np.sum(w1 * inner_v) * up.scale[i]).real
        else:
            var[i] = 0.0
    # train loss: InvLap[sum p/(lam + kappa) + noise/kappa](2t)
    tr_nodes = talbot_nodes(2.0 * t, M)
    kap_t, res_t = _kappa_at(lam, P, tr_nodes.s)
    tr_vals = np.sum(p / (lam + kap_t[..., None]), axis=-1) + noise / kap_t
    train = talbot_sum(tr_nodes, tr_vals)
    ok = res.converged and res_t.converged
    return bias, var, train, ok, max(res.residual, res_t.residual), max(res.iterations, res_t.iterations)


def _data_curve(lam, p, P, t, noise, M):
    bias, var, train, ok, residual, iters = _data_terms(lam, p, P, t, noise, M)
    floor = data_bottleneck(lam, p, P, noise=noise)
    return RFCurve(
        t=t, loss=bias + var, train_loss=train, bias=bias, variance=var, floor=floor, N=None, P=P,
        converged=ok, iterations=iters, residual=residual,
        message="converged" if ok else "complex kappa not solved to tolerance at some Talbot nodes",
    )


def _joint_curve(lam, p, N, P, t, noise, M, n_draws, seed):
    """(6.4): conditional on F, average over projection draws."""
    rng = np.random.default_rng(seed)
    wstar = np.sqrt(p / lam)
    K = len(lam)
    N_int = int(round(N))
    losses, trains, biases, variances = [], [], [], []
    ok, residual, iters = True, 0.0, 0
    for _ in range(n_draws):
        F = rng.standard_normal((N_int, K))
        FL = F * lam
        SF = FL @ F.T / N_int
        bF = FL @ wstar / np.sqrt(N_int)
        mu, U = np.linalg.eigh(SF)
        c = U.T @ bF
        keep = mu > 1e-12 * mu.max()
        mu_k, c_k = mu[keep], c[keep]
        a_coef2 = c_k**2 / mu_k                      # power mu_j a*_j^2 = c_j^2 / mu_j
        l_inf = max(float(wstar @ (lam * wstar) - np.sum(a_coef2)), 0.0)
        b, v, tr, ok_d, res_d, it_d = _data_terms(mu_k, a_coef2, P, t, noise + l_inf, M)
        losses.append(b + v + l_inf)
        biases.append(b)
        variances.append(v + l_inf)
        trains.append(tr)
        ok &= ok_d
        residual = max(residual, res_d)
        iters = max(iters, it_d)
    return RFCurve(
        t=t, loss=np.mean(losses, 0), train_loss=np.mean(trains, 0), bias=np.mean(biases, 0),
        variance=np.mean(variances, 0), N=N, P=P, converged=ok, iterations=iters, residual=residual,
        message="converged (averaged over %d projection draws)" % n_draws if ok
        else "complex kappa not solved to tolerance at some Talbot nodes",
        extras={"n_draws": n_draws, "seed": seed, "per_draw_loss": np.array(losses)},
    )


def rf_loss_curve(
    eigenvalues,
    target_power,
    t,
    *,
    N: float | None = None,
    P: float | None = None,
    noise: float = 0.0,
    ensemble: int = 1,
    M: int | None = None,
    n_draws: int = 4,
    seed: int = 0,
) -> RFCurve:
    """Expected test (and train) loss of a random-feature model trained by gradient flow.

    Equation (eq:scaling.rf_width): ``L(t) = sum_k p_k h_k(2t),
        h_k(tau) = InvLap[ kappa_N(s) / (s (lam_k + kappa_N(s))) ](tau)``

    Equation (eq:scaling.rf_ensemble): ``L_E(t) = Lbar(t) + (L(t) - Lbar(t)) / E,
        Lbar(t) = sum_k p_k h_k(t)^2``

    Solves the Laplace-domain theory of Bordelon, Atanasov & Pehlevan, "A Dynamical Model
    of Neural Scaling Laws" (equations (6.1)-(6.4) in this module's docstring).

    Parameters
    ----------
    eigenvalues : array_like, shape (K,)
        Latent feature covariance eigenvalues lam_k (>= 0; zero modes are dropped).
    target_power : array_like, shape (K,)
        p_k = lam_k w*_k^2 (>= 0). The loss at t = 0 is sum(p).
    t : array_like, shape (T,)
        Gradient-flow times (learning rate x steps), > 0.
    N : float, optional
        Number of random features (>= 1); None = infinite (no projection).
    P : float, optional
        Number of training samples (>= 1); None = infinite data (online / population flow).
    noise : float
        Label-noise variance (used for finite P; a population flow is not affected).
    ensemble : int
        Number of independently projected models whose predictions are averaged
        (finite N, P = inf only).
    M : int, optional
        Talbot nodes (default 32 for single inversions, 24 for the double inversion).
    n_draws, seed : int
        For finite N *and* finite P the theory is exact conditional on the projection F
        and is averaged over ``n_draws`` draws of F (seeded); see (6.4).

    Returns
    -------
    RFCurve
    """
    lam, p = _spectrum(eigenvalues, target_power)
    t = _times(t)
    N = _size(N, "N")
    P = _size(P, "P")
    noise = check_real(noise, "noise", lo=0)
    ensemble = check_int(ensemble, "ensemble", lo=1)
    n_draws = check_int(n_draws, "n_draws", lo=1)
    seed = check_int(seed, "seed", lo=0)
    if M is not None:
        M = check_int(M, "M", lo=8, hi=64)
    if ensemble > 1 and (N is None or P is not None):
        fail("ensemble", "1 unless N is finite and P is None (ensembles are modelled for online training)", ensemble)
    if N is None and P is None:
        loss = np.exp(-2.0 * np.outer(t, lam)) @ p
        return RFCurve(t=t, loss=loss, floor=0.0, converged=True, status="closed_form", iterations=0,
                       residual=float("nan"), message="closed form (no bottleneck)")
    if P is None:
        out = _width_curve(lam, p, N, t, ensemble, M or 32)
    elif N is None:
        out = _data_curve(lam, p, P, t, noise, M or 24)
    else:
        out = _joint_curve(lam, p, N, P, t, noise, M or 24, n_draws, seed)
    if not out.converged:
        warn_not_converged("rf_loss_curve", out.message)
    return out


# --------------------------------------------------------------------------- bottlenecks
def width_bottleneck(eigenvalues, target_power, N) -> float:
    """L_inf(N) = sum_k p_k kappa0/(lam_k + kappa0) with sum_k lam_k/(lam_k + kappa0) = N.

    The t -> inf loss of a width-N random-feature model trained on infinite data (the
    projection onto N random directions leaves this much of the target unexplained);
    zero when N >= number of nonzero modes.
    """
    lam, p = _spectrum(eigenvalues, target_power)
    N = check_real(N, "N", lo=1)
    kap = solve_kappa(lam, N, 0.0).kappa[0] / N
    if kap == 0.0:
        return 0.0
    return float(np.sum(p * kap / (lam + kap)))


def data_bottleneck(eigenvalues, target_power, P, *, noise: float = 0.0) -> float:
    """t -> inf test loss of gradient flow on P samples with infinitely many features.

    The ridgeless kernel learning curve E_g = [sum_k p_k kappa^2/(P lam_k + kappa)^2 + gamma
    noise] / (1 - gamma) (kernel-sum convention, Bordelon, Canatar & Pehlevan), the limit
    of (6.3); returns inf at the interpolation peak (gamma = 1 with noise).
    """
    lam, p = _spectrum(eigenvalues, target_power)
    P = check_real(P, "P", lo=1)
    noise = check_real(noise, "noise", lo=0)
    kap = solve_kappa(lam, P, 0.0).kappa[0]
    if kap == 0.0:  # under-parameterised: every mode learned, gamma = n/P
        gamma = len(lam) / P
        return float(gamma * noise / (1 - gamma)) if gamma < 1 else float("inf")
    den = P * lam + kap
    gamma = float(np.sum(P * lam**2 / den**2))
    if gamma >= 1:
        return float("inf")
    return float((np.sum(p * kap**2 / den**2) + gamma * noise) / (1 - gamma))


# --------------------------------------------------------------------------- exponents
@dataclass(frozen=True)
class ScalingExponents:
    """Power-law exponents (L ~ x^{-exponent}) for lam_k ~ k^{-b}, lam_k w*_k^2 ~ k^{-a}.

    Attributes
    ----------
    time : float
        (a - 1) / b: L(t) at N, P = inf.
    width : float
        min(a - 1, b): the bottleneck L_inf(N) at t, P = inf.
    data : float
        min(a - 1, 2 b): the ridgeless data bottleneck at t, N = inf.
    """

    a: float
    b: float
    time: float
    width: float
    data: float


def rf_exponents(a: float, b: float) -> ScalingExponents:
    """Scaling exponents of the random-feature model (see :class:`ScalingExponents`).

    Equation (eq:scaling.exponents): ``L ~ t^{-(a-1)/b},  L_inf(N) ~ N^{-min(a-1, b)},
        L(P) ~ P^{-min(a-1, 2b)}``

    Parameters
    ----------
    a : float
        Decay exponent of the target power p_k = lam_k w*_k^2 ~ k^{-a}; a > 1.
    b : float
        Decay exponent of the eigenvalues lam_k ~ k^{-b}; b > 1.
    """
    a = check_real(a, "a", lo=1, lo_closed=False)
    b = check_real(b, "b", lo=1, lo_closed=False)
    return ScalingExponents(a=a, b=b, time=(a - 1) / b, width=min(a - 1, b), data=min(a - 1, 2 * b))


@dataclass(frozen=True)
class ComputeOptimal:
    """Compute-optimal allocation for L ~ t^{-x} + N^{-y} at fixed compute C = N t.

    ``N_exponent``: N* ~ C^{N_exponent}; ``t_exponent``: t* ~ C^{t_exponent};
    ``loss_exponent``: L* ~ C^{-loss_exponent}.
    """

    time_exponent: float
    width_exponent: float
    N_exponent: float
    t_exponent: float
    loss_exponent: float


def compute_optimal(time_exponent: float, width_exponent: float) -> ComputeOptimal:
    """Balance L = t^{-x} + N^{-y} at C = N t.

    Equation (eq:scaling.compute_optimal): ``N* ~ C^{x/(x+y)},  t* ~ C^{y/(x+y)},  L* ~ C^{-x y/(x+y)}
        (L = t^{-x} + N^{-y}, C = N t)``

    Balancing gives t ~ N^{y/x}, so N* ~ C^{x/(x+y)}, t* ~ C^{y/(x+y)} and
    L* ~ C^{-x y/(x+y)}. For the random-feature model with a - 1 < b this is
    N* ~ C^{1/(1+b)}, t* ~ C^{b/(1+b)}, L* ~ C^{-(a-1)/(1+b)}: the number of steps grows
    faster than the number of parameters (Bordelon, Atanasov & Pehlevan).

    Parameters
    ----------
    time_exponent : float
        x > 0 in L ~ t^{-x}.
    width_exponent : float
        y > 0 in L ~ N^{-y}.

    Examples
    --------
    >>> opt = compute_optimal(0.5, 1.0)
    >>> round(opt.N_exponent, 4), round(opt.t_exponent, 4), round(opt.loss_exponent, 4)
    (0.3333, 0.6667, 0.3333)
    """
    x = check_real(time_exponent, "time_exponent", lo=0, lo_closed=False)
    y = check_real(width_exponent, "width_exponent", lo=0, lo_closed=False)
    return ComputeOptimal(x, y, x / (x + y), y / (x + y), x * y / (x + y))


@dataclass(frozen=True)
class ComputeFrontier:
    """The compute-optimal frontier of the online (P = inf) loss surface L(t, N).

    ``compute``, ``N``, ``t`` and ``loss`` have one entry per compute budget C: the width
    N*(C) minimising L(C / N, N), the time t* = C / N* and the loss L* there.
    """

    compute: np.ndarray
    N: np.ndarray
    t: np.ndarray
    loss: np.ndarray


def compute_frontier(eigenvalues, target_power, widths, compute) -> ComputeFrontier:
    """Minimise the theory's loss L(t = C / N, N) over N at each compute budget C = N t.

    The loss (6.1) is evaluated on the grid ``widths`` x ``compute``; at each C the minimum
    over log N is refined by the parabola through the best grid width and its two
    neighbours (the best interior point is used when the minimum is at an edge).

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (K,)
        As in :func:`rf_loss_curve`.
    widths : array_like, shape (W,)
        Increasing positive widths N (W >= 3), spanning the optimum.
    compute : array_like, shape (C,)
        Positive compute budgets.
    """
    Ns = check_array(widths, "widths", ndim=1, positive=True, min_size=3)
    if np.any(np.diff(Ns) <= 0):
        fail("widths", "strictly increasing", Ns)
    Cs = check_array(compute, "compute", ndim=1, positive=True, min_size=1)
    grid = np.array([rf_loss_curve(eigenvalues, target_power, Cs / N, N=N).loss for N in Ns])
    logN = np.log(Ns)
    N_star, L_star = np.empty(len(Cs)), np.empty(len(Cs))
    for j in range(len(Cs)):
        i = int(np.clip(np.argmin(grid[:, j]), 1, len(Ns) - 2))
        c = np.polyfit(logN[i - 1:i + 2], np.log(grid[i - 1:i + 2, j]), 2)
        x = -c[1] / (2 * c[0]) if c[0] > 0 else logN[i]
        N_star[j], L_star[j] = np.exp(x), np.exp(np.polyval(c, x))
    return ComputeFrontier(compute=Cs, N=N_star, t=Cs / N_star, loss=L_star)
