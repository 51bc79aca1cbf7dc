"""Learning curves of TD(0) policy evaluation with linear function approximation.

Bordelon, Masset, Kuo & Pehlevan, "Loss Dynamics of Temporal Difference Reinforcement
Learning". A value function ``V_w(s) = w . phi(s)`` (features phi in R^N) is learned by
semi-gradient TD(0) from minibatches of ``B`` independent episodes of length ``T``:

    w <- w + (lr / B) sum_b sum_{t<T} phi_t (r_t + gamma phi_{t+1} . w - phi_t . w).

``T = 1`` with start states drawn from the stationary distribution is the i.i.d.-transition
setting. Under the paper's Gaussian-equivalence hypothesis the trajectory features and rewards
``z_t = (phi_t, r_t)`` are replaced by a zero-mean Gaussian process with the same second
moments; for a stationary process these are the lag moments

    K_d = E[z_t z_{t+d}^T],   d = 0..T,   shape (T+1, N+1, N+1).

Equations (re-derived for lmech, checked against simulation; see tests). With lag-d blocks
``S(d) = E[phi_t phi_{t+d}^T]`` (``S(-d) = S(d)^T``), ``q(d) = E[phi_t r_{t+d}]``,
``rho(d) = E[r_t r_{t+d}]`` and ``psi_t = gamma phi_{t+1} - phi_t``:

* TD matrix ``A = S(0) - gamma S(1)``; fixed point ``A w_V = q(0)`` (the TD solution, equal
  to the true value weights when the value is representable); per-episode mean matrix
  ``Abar = T A``.
* Semi-gradient direction of one episode ``G = sum_t phi_t (xi_t + psi_t . D)`` with the weight
  error ``D = w - w_V`` and the fixed-point TD error ``xi_t = r_t + psi_t . w_V``. Its moments
  involve only the lag blocks ``M(d) = gamma S(d+1) - S(d)``,
  ``Psi(d) = (1 + gamma^2) S(d) - gamma S(d-1) - gamma S(d+1)``, ``e(d) = q(d) + M(d) w_V``,
  ``c(d) = gamma e(d-1) - e(d)`` and ``X(d) = E[xi_t xi_{t+d}]``; Wick's theorem gives

      E[G G^T] = sum_{|d|<T} (T - |d|) { S(d) [tr(Psi(d) C) + m.c(-d) + c(d).m + X(d)]
                  + M(d) C M(-d)^T + M(d) m e(-d)^T + e(d) (M(-d) m)^T + e(d) e(-d)^T }
                  + Abar C Abar^T,

  with ``m = E D`` and ``C = E D D^T``.
* Mean and second moment of the error after each minibatch step:

      m_{k+1} = (I - lr Abar) m_k
      C_{k+1} = C_k - lr (Abar C_k + C_k Abar^T)
                + lr^2 [ (1 - 1/B) Abar C_k Abar^T + (1/B) E[G G^T] ]

  and the value error ``E_pi[(V_w - V_{w_V})^2] = tr(S(0) C_k)``.

For ``T = 1`` this reduces to the i.i.d.-transition recursion;
the semi-gradient noise ``X(0) > 0`` (present for gamma > 0 even without reward noise) makes
the value error plateau at a level ~ lr / B for constant learning rates; annealing the
learning rate removes the plateau. The homogeneous part of the C-map is linear; its spectral
radius decides mean-square stability (divergence for too large a learning rate).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import MAX_MAGNITUDE, MAX_SIZE, check_array, check_choice, check_int, check_real, check_scale, fail

from lmech.results import SolverResult, warn_not_converged

__all__ = [
    "TDCurveResult",
    "td_learning_curve",
    "td_fixed_point",
    "td_stability",
    "max_stable_lr",
    "linear_reward_moments",
    "markov_chain_moments",
    "stationary_distribution",
    "MarkovTDCurveResult",
    "markov_td_learning_curve",
]

_DIVERGENCE_FACTOR = 1e12


# --------------------------------------------------------------------------- moment builders
def stationary_distribution(transition) -> np.ndarray:
    """Stationary distribution ``pi`` (``pi P = pi``) of an ergodic Markov chain.

    Parameters
    ----------
    transition : array_like, shape (n, n)
        Row-stochastic matrix.
    """
    P = _check_transition(transition)
    n = P.shape[0]
    # solve pi (P - I) = 0 with sum(pi) = 1 in the least-squares sense (unique for ergodic P)
    A = np.vstack([(P - np.eye(n)).T, np.ones((1, n))])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    if np.any(pi < -1e-10) or np.linalg.norm(pi @ P - pi) > 1e-8:
        fail("transition", "an ergodic chain with a unique stationary distribution", P)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _check_transition(transition) -> np.ndarray:
    P = check_array(transition, "transition", ndim=2, nonnegative=True)
    if P.shape[0] != P.shape[1]:
        fail("transition", "a square matrix", P)
    if not np.allclose(P.sum(axis=1), 1.0, atol=1e-10):
        fail("transition", "row-stochastic (rows summing to 1)", P)
    return P


def markov_chain_moments(transition, features, rewards, n_lags: int, *, distribution=None) -> np.ndarray:
    """Lag moments ``K_d = E[z_t z_{t+d}^T]`` of ``z = (phi(s), r(s))`` along a stationary chain.

    ``K_d = Z^T diag(pi) P^d Z`` with ``Z = [features, rewards]`` (raw second moments, not
    centred: the Gaussian-equivalent theory matches second moments).

    Parameters
    ----------
    transition : array_like, shape (n, n)
        Row-stochastic transition matrix of the chain under the evaluated policy.
    features : array_like, shape (n, N)
        ``phi(s)`` for every state.
    rewards : array_like, shape (n,)
        Expected reward received in each state.
    n_lags : int
        Number of lags; returns ``d = 0 .. n_lags`` (use the episode length T).
    distribution : array_like, shape (n,), optional
        Start/state distribution (default: the stationary one; a non-stationary choice makes
        the moments depend on t, which this function does not model).

    Returns
    -------
    ndarray, shape (n_lags + 1, N + 1, N + 1)
    """
    P = _check_transition(transition)
    n = P.shape[0]
    Phi = check_array(features, "features", max_abs=MAX_MAGNITUDE, ndim=2)
    if Phi.shape[0] != n:
        fail("features", f"of shape ({n}, N) (one row per state)", Phi)
    r = check_array(rewards, "rewards", max_abs=MAX_MAGNITUDE, shape=(n,))
    lags = check_int(n_lags, "n_lags", lo=1, hi=MAX_SIZE)
    pi = stationary_distribution(P) if distribution is None else check_array(
        distribution, "distribution", shape=(n,), nonnegative=True)
    Z = np.hstack([Phi, r[:, None]])
    out = np.empty((lags + 1, Z.shape[1], Z.shape[1]))
    right = Z.copy()
    left = (pi[:, None] * Z).T
    for d in range(lags + 1):
        out[d] = left @ right
        right = P @ right
    return out


def linear_reward_moments(feature_lags, w_reward) -> np.ndarray:
    """Lag moments for a reward linear in the features, ``r_t = phi_t . w_reward``.

    Parameters
    ----------
    feature_lags : array_like, shape (L, N, N)
        ``S(d) = E[phi_t phi_{t+d}^T]`` for d = 0..L-1 (``S(0)`` symmetric PSD).
    w_reward : array_like, shape (N,)

    Returns
    -------
    ndarray, shape (L, N + 1, N + 1)
    """
    S = check_array(feature_lags, "feature_lags", max_abs=MAX_MAGNITUDE, ndim=3)
    N = S.shape[1]
    if S.shape[2] != N:
        fail("feature_lags", "of shape (L, N, N)", S)
    w = check_array(w_reward, "w_reward", max_abs=MAX_MAGNITUDE, shape=(N,))
    out = np.empty((S.shape[0], N + 1, N + 1))
    out[:, :N, :N] = S
    out[:, :N, N] = S @ w
    out[:, N, :N] = w @ S
    out[:, N, N] = np.einsum("i,dij,j->d", w, S, w)
    return out


# --------------------------------------------------------------------------- the recursion
@dataclass(frozen=True)
class _Blocks:
    """All lag blocks the recursion needs, indexed by lag d = -(T-1) .. T-1."""

    T: int
    gamma: float
    S0: np.ndarray        # (N, N) stationary second moment
    A: np.ndarray         # (N, N) TD matrix S(0) - gamma S(1)
    w_value: np.ndarray   # (N,)
    weight: np.ndarray    # (nl,) T - |d|
    S: np.ndarray         # (nl, N, N) S(d)
    Psi: np.ndarray       # (nl, N, N)
    M: np.ndarray         # (nl, N, N)
    Mrev: np.ndarray      # (nl, N, N) M(-d)
    e: np.ndarray         # (nl, N)
    erev: np.ndarray      # (nl, N) e(-d)
    c: np.ndarray         # (nl, N)
    crev: np.ndarray      # (nl, N) c(-d)
    X: np.ndarray         # (nl,)
    ee: np.ndarray        # (N, N) sum_d w e(d) e(-d)^T + T^2 e(0) e(0)^T


def _check_moments(lag_moments, episode_length: int) -> np.ndarray:
    K = check_array(lag_moments, "lag_moments", max_abs=MAX_MAGNITUDE, ndim=3)
    if K.shape[1] != K.shape[2] or K.shape[1] < 2:
        fail("lag_moments", "of shape (L, N+1, N+1) with N >= 1", K)
    if K.shape[0] < episode_length + 1:
        fail("lag_moments", f"to hold at least episode_length + 1 = {episode_length + 1} lags", K)
    check_scale(K, "lag_moments")
    K0 = K[0]
    if not np.allclose(K0, K0.T, atol=1e-10 * max(1.0, np.abs(K0).max())):
        fail("lag_moments", "such that lag_moments[0] is symmetric", K)
    ev = np.linalg.eigvalsh(K0[:-1, :-1])
    if ev.min() <= 1e-12 * max(ev.max(), 1e-300):
        fail("lag_moments", "such that the feature second moment lag_moments[0][:N, :N] is positive definite",
             f"min eigenvalue {ev.min():.3g}")
    return K


def _blocks(K: np.ndarray, gamma: float, T: int, reward_noise: float) -> _Blocks:
    N = K.shape[1] - 1
    F = K[:, :N, :N]

    def S(d):
        return F[d] if d >= 0 else F[-d].T

    def q(d):
        return K[d, :N, N] if d >= 0 else K[-d, N, :N]

    def rho(d):
        return K[abs(d), N, N] + (reward_noise if d == 0 else 0.0)

    S0 = F[0]
    A = S0 - gamma * F[1]
    if np.linalg.cond(A) > 1e12:
        fail("lag_moments", "such that the TD matrix S(0) - discount S(1) is invertible", f"cond {np.linalg.cond(A):.3g}")
    w_value = np.linalg.solve(A, q(0))
    lags = list(range(-(T - 1), T))

    def M(d):
        return gamma * S(d + 1) - S(d)

    def Psi(d):
        return (1 + gamma**2) * S(d) - gamma * S(d - 1) - gamma * S(d + 1)

    def e(d):
        return q(d) + M(d) @ w_value

    def c(d):
        return gamma * e(d - 1) - e(d)

    def X(d):
        return (rho(d) + w_value @ (gamma * q(d - 1) - q(d)) + w_value @ (gamma * q(-d - 1) - q(-d))
                + w_value @ Psi(d) @ w_value)

    weight = np.array([T - abs(d) for d in lags], dtype=float)
    e_arr = np.array([e(d) for d in lags])
    erev = e_arr[::-1].copy()
    e0 = e(0)
    ee = np.einsum("d,di,dj->ij", weight, e_arr, erev) + T**2 * np.outer(e0, e0)
    M_arr = np.array([M(d) for d in lags])
    c_arr = np.array([c(d) for d in lags])
    return _Blocks(
        T=T, gamma=gamma, S0=S0, A=A, w_value=w_value, weight=weight,
        S=np.array([S(d) for d in lags]), Psi=np.array([Psi(d) for d in lags]),
        M=M_arr, Mrev=M_arr[::-1].copy(), e=e_arr, erev=erev, c=c_arr, crev=c_arr[::-1].copy(),
        X=np.array([X(d) for d in lags]), ee=ee,
    )


def _noise_second_moment(b: _Blocks, C: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[G G^T] for one episode, given E D = m and E D D^T = C (Wick's theorem)."""
    w = b.weight
    coef = w * (np.einsum("dij,ji->d", b.Psi, C) + b.crev @ m + b.c @ m + b.X)
    out = np.einsum("d,dij->ij", coef, b.S)
    MC = b.M @ C
    out += np.einsum("d,dij,dkj->ik", w, MC, b.Mrev)
    Mm = b.M @ m
    cross = np.einsum("d,di,dj->ij", w, Mm, b.erev)
    out += cross + cross.T + b.ee
    Abar = b.T * b.A
    e0 = b.e[b.T - 1]
    M0m = b.M[b.T - 1] @ m
    out += Abar @ C @ Abar.T + b.T**2 * (np.outer(M0m, e0) + np.outer(e0, M0m))
    return out


def _step(b: _Blocks, C: np.ndarray, m: np.ndarray, lr: float, B: int) -> tuple[np.ndarray, np.ndarray]:
    Abar = b.T * b.A
    AC = Abar @ C
    EGG = _noise_second_moment(b, C, m)
    C_new = C - lr * (AC + AC.T) + lr**2 * ((1 - 1 / B) * AC @ Abar.T + EGG / B)
    C_new = 0.5 * (C_new + C_new.T)
    return C_new, m - lr * (Abar @ m)


def _linear_operator(b: _Blocks, lr: float, B: int) -> np.ndarray:
    """Dense matrix of the homogeneous C-map (m = 0) on row-major vec(C), shape (N^2, N^2)."""
    N = b.S0.shape[0]
    Abar = b.T * b.A
    eye = np.eye(N)
    L = np.eye(N * N) - lr * (np.kron(Abar, eye) + np.kron(eye, Abar))
    quad = (1 - 1 / B) * np.kron(Abar, Abar)
    noise = np.kron(Abar, Abar)
    for wd, Sd, Pd, Md, Mr in zip(b.weight, b.S, b.Psi, b.M, b.Mrev):
        noise += wd * (np.outer(Sd.ravel(), Pd.T.ravel()) + np.kron(Md, Mr))
    return L + lr**2 * (quad + noise / B)


def _spectral_radius(op: np.ndarray) -> float:
    n = op.shape[0]
    if n <= 256:
        return float(np.max(np.abs(np.linalg.eigvals(op))))
    from scipy.sparse.linalg import eigs

    try:
        val = eigs(op, k=1, which="LM", return_eigenvectors=False, tol=1e-10, maxiter=20 * n)
        return float(np.abs(val[0]))
    except Exception:  # ARPACK failure: fall back to the dense computation
        return float(np.max(np.abs(np.linalg.eigvals(op))))


@dataclass(frozen=True, kw_only=True)
class TDCurveResult(SolverResult):
    """Predicted TD(0) learning curve.

    Attributes
    ----------
    steps : ndarray, shape (n_steps + 1,)
        Minibatch steps 0..n_steps.
    value_error : ndarray, shape (n_steps + 1,)
        ``E_pi[(V_{w_k} - V_{w_V})^2] = tr(S(0) C_k)`` averaged over runs. After a predicted
        blow-up (``diverged``) the remaining entries are ``inf`` (never NaN).
    mean_error : ndarray, shape (n_steps + 1,)
        ``m_k^T S(0) m_k``: the value error of the averaged weights (deterministic part).
    w_value : ndarray, shape (N,)
        TD fixed point ``A^{-1} q(0)``.
    fixed_point_noise : float
        ``X(0)``: variance of the TD error at the fixed point (semi-gradient noise), including
        reward noise.
    diverged : bool
        The value error exceeded 1e12 times its initial value within ``n_steps``.
    stable : bool or None
        Mean-square stability for a constant learning rate (spectral radius of the linear
        (m, C) map < 1); None for learning-rate schedules.
    spectral_radius : float or None
    plateau : float or None
        Asymptotic value error ``tr(S(0) C_inf)`` for a constant stable learning rate
        (``inf`` when unstable; None for schedules).
    """

    steps: np.ndarray
    value_error: np.ndarray
    mean_error: np.ndarray
    w_value: np.ndarray
    fixed_point_noise: float
    diverged: bool
    stable: bool | None
    spectral_radius: float | None
    plateau: float | None


def _check_common(lag_moments, discount, batch_size, episode_length, reward_noise):
    gamma = check_real(discount, "discount", lo=0.0, hi=1.0, hi_closed=False)
    B = check_int(batch_size, "batch_size", lo=1)
    T = check_int(episode_length, "episode_length", lo=1)
    s2 = check_real(reward_noise, "reward_noise", lo=0.0)
    K = _check_moments(lag_moments, T)
    return K, gamma, B, T, s2


def td_fixed_point(lag_moments, discount: float) -> np.ndarray:
    """TD fixed point ``w_V`` solving ``(S(0) - discount S(1)) w_V = q(0)``, shape (N,).

    Equation (eq:td.fixed_point): ``(S(0) - gamma S(1)) w_V = q(0)``
    """
    gamma = check_real(discount, "discount", lo=0.0, hi=1.0, hi_closed=False)
    K = _check_moments(lag_moments, 1)
    return _blocks(K, gamma, 1, 0.0).w_value


def td_learning_curve(
    lag_moments,
    *,
    discount: float,
    lr,
    n_steps: int,
    batch_size: int = 1,
    episode_length: int = 1,
    reward_noise: float = 0.0,
    w_init=None,
    plateau: bool = True,
) -> TDCurveResult:
    """Gaussian-equivalent learning curve of minibatch TD(0) (see the module docstring).

    Equation (eq:td.learning_curve): ``m_{k+1} = (I - lr Abar) m_k,
        C_{k+1} = C_k - lr (Abar C_k + C_k Abar^T) + lr^2 [(1 - 1/B) Abar C_k Abar^T + (1/B) E[G G^T]],
        value error = tr(S(0) C_k)``

    Parameters
    ----------
    lag_moments : array_like, shape (L, N + 1, N + 1), L >= episode_length + 1
        ``K_d = E[z_t z_{t+d}^T]`` of ``z = (phi, r)`` (from :func:`markov_chain_moments` or
        :func:`linear_reward_moments`).
    discount : float in [0, 1)
    lr : float or array_like of shape (n_steps,)
        Learning rate (> 0), constant or one per step (annealing schedules).
    n_steps : int
        Number of minibatch updates.
    batch_size : int
        Episodes (or transitions) per update, B >= 1.
    episode_length : int
        T transitions per episode; 1 means i.i.d. transitions from the stationary law.
    reward_noise : float
        Variance of i.i.d. Gaussian noise added to every reward.
    w_init : array_like, shape (N,), optional
        Initial weights (default 0).
    plateau : bool
        For a constant learning rate, also compute the spectral radius and the asymptotic
        value error (an N^2 x N^2 linear algebra problem; skip it for large N).

    Returns
    -------
    TDCurveResult
        The recursion is exact: ``status="closed_form"`` (``iterations = n_steps``, ``residual``
        NaN). A blow-up gives ``status="diverged"``, ``converged=False`` and a
        ConvergenceWarning; an unconverged plateau solve (large N) gives ``"max_iter"``.
    """
    K, gamma, B, T, s2 = _check_common(lag_moments, discount, batch_size, episode_length, reward_noise)
    n = check_int(n_steps, "n_steps", lo=0, hi=MAX_SIZE)
    N = K.shape[1] - 1
    lr_arr = check_array(lr, "lr", ndim=(0, 1), positive=True, max_abs=MAX_MAGNITUDE)
    constant = lr_arr.ndim == 0
    if not constant and lr_arr.shape != (n,):
        fail("lr", f"a positive scalar or an array of shape (n_steps,) = ({n},)", lr_arr)
    lrs = np.full(n, float(lr_arr)) if constant else lr_arr
    b = _blocks(K, gamma, T, s2)
    w0 = np.zeros(N) if w_init is None else check_array(w_init, "w_init", shape=(N,))

    m = w0 - b.w_value
    C = np.outer(m, m)
    ve = np.full(n + 1, np.inf)
    me = np.full(n + 1, np.inf)
    ve[0] = float(np.trace(b.S0 @ C))
    me[0] = float(m @ b.S0 @ m)
    scale = max(ve[0], float(b.w_value @ b.S0 @ b.w_value), float(b.X[T - 1]), 1e-300)
    limit = _DIVERGENCE_FACTOR * scale
    diverged = False
    for k in range(n):
        C, m = _step(b, C, m, lrs[k], B)
        v = float(np.trace(b.S0 @ C))
        if not np.isfinite(v) or v > limit:
            diverged = True
            break
        ve[k + 1] = v
        me[k + 1] = float(m @ b.S0 @ m)

    stable = radius = plat = None
    plateau_ok = True
    if constant and plateau:
        stable, radius, plat, plateau_ok = _asymptotics(b, float(lr_arr), B)
    # The recursion is exact (closed form); it fails only by blowing up, or when the iterative
    # plateau solve (large N) misses its tolerance.
    status = "closed_form"
    message = "exact moment recursion"
    if diverged:
        status = "diverged"
        message = f"value error diverges: exceeded {_DIVERGENCE_FACTOR:g} x its scale at step {k + 1}"
    elif not plateau_ok:
        status = "max_iter"
        message = "GMRES for the plateau did not converge; plateau may be inaccurate"
    elif stable is False:
        message = "learning rate is mean-square unstable: the value error diverges at long times"
    if status != "closed_form":
        warn_not_converged("td_learning_curve", message)
    return TDCurveResult(
        steps=np.arange(n + 1), value_error=ve, mean_error=me, w_value=b.w_value,
        fixed_point_noise=float(b.X[T - 1]), diverged=diverged, stable=stable,
        spectral_radius=radius, plateau=plat, converged=status == "closed_form", status=status,
        iterations=n, residual=float("nan"), message=message,
    )


_DENSE_MAX_N = 30


def _homogeneous_map(b: _Blocks, lr: float, B: int):
    """Matrix-free homogeneous C-map (m = 0) on flattened C, for large N."""
    N = b.S0.shape[0]
    zero = np.zeros(N)
    const = _noise_second_moment(b, np.zeros((N, N)), zero)

    def apply(v):
        C = v.reshape(N, N)
        C_new, _ = _step(b, C, zero, lr, B)
        # _step adds the constant (C-independent) noise lr^2/B * E[GG^T](C=0); remove it
        return (C_new - (lr**2 / B) * const).ravel()

    return apply, const


def _asymptotics(b: _Blocks, lr: float, B: int) -> tuple[bool, float, float, bool]:
    """(stable, spectral radius, plateau, plateau solve converged)."""
    N = b.S0.shape[0]
    r_m = float(np.max(np.abs(np.linalg.eigvals(np.eye(N) - lr * b.T * b.A))))
    if N <= _DENSE_MAX_N:
        op = _linear_operator(b, lr, B)
        r_C = _spectral_radius(op)
        radius = max(r_C, r_m)
        if radius >= 1.0:
            return False, radius, float("inf"), True
        const = (lr**2 / B) * _noise_second_moment(b, np.zeros((N, N)), np.zeros(N))
        c_inf = np.linalg.solve(np.eye(N * N) - op, const.ravel()).reshape(N, N)
        return True, radius, float(np.trace(b.S0 @ c_inf)), True
    from scipy.sparse.linalg import LinearOperator, eigs, gmres

    apply, const = _homogeneous_map(b, lr, B)
    op = LinearOperator((N * N, N * N), matvec=apply, dtype=float)
    r_C = float(np.abs(eigs(op, k=1, which="LM", return_eigenvectors=False, tol=1e-8, maxiter=50 * N * N)[0]))
    radius = max(r_C, r_m)
    if radius >= 1.0:
        return False, radius, float("inf"), True
    lhs = LinearOperator((N * N, N * N), matvec=lambda v: v - apply(v), dtype=float)
    rhs = (lr**2 / B) * const.ravel()
    sol, info = gmres(lhs, rhs, rtol=1e-12, atol=0.0, restart=200, maxiter=200)
    c_inf = sol.reshape(N, N)
    return True, radius, float(np.trace(b.S0 @ (0.5 * (c_inf + c_inf.T)))), info == 0


def td_stability(lag_moments, *, discount: float, lr: float, batch_size: int = 1, episode_length: int = 1,
                 reward_noise: float = 0.0) -> tuple[bool, float]:
    """Mean-square stability of constant-learning-rate TD(0): (stable, spectral radius).

    The (m, C) recursion is affine with a block-triangular linear part; it converges iff the
    spectral radius of ``I - lr Abar`` and of the homogeneous C-map are both below 1.
    """
    K, gamma, B, T, s2 = _check_common(lag_moments, discount, batch_size, episode_length, reward_noise)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False, hi=MAX_MAGNITUDE)
    b = _blocks(K, gamma, T, s2)
    radius = _radius(b, eta, B)
    return radius < 1.0, radius


def _radius(b: _Blocks, lr: float, B: int) -> float:
    N = b.S0.shape[0]
    r_m = float(np.max(np.abs(np.linalg.eigvals(np.eye(N) - lr * b.T * b.A))))
    if N <= _DENSE_MAX_N:
        return max(_spectral_radius(_linear_operator(b, lr, B)), r_m)
    from scipy.sparse.linalg import LinearOperator, eigs

    apply, _ = _homogeneous_map(b, lr, B)
    op = LinearOperator((N * N, N * N), matvec=apply, dtype=float)
    r_C = float(np.abs(eigs(op, k=1, which="LM", return_eigenvectors=False, tol=1e-8, maxiter=50 * N * N)[0]))
    return max(r_C, r_m)


def max_stable_lr(lag_moments, *, discount: float, batch_size: int = 1, episode_length: int = 1,
                  rtol: float = 1e-6) -> float:
    """Largest constant learning rate for which TD(0) is mean-square stable (bisection).

    Stability holds on an interval ``(0, lr_max)``: for small lr the map contracts (A has
    eigenvalues with positive real part for gamma < 1) and the lr^2 noise terms eventually
    dominate. Returns ``lr_max`` to relative accuracy ``rtol``.
    """
    K, gamma, B, T, _ = _check_common(lag_moments, discount, batch_size, episode_length, 0.0)
    tol = check_real(rtol, "rtol", lo=0.0, lo_closed=False)
    b = _blocks(K, gamma, T, 0.0)
    N = b.S0.shape[0]

    def radius(eta: float) -> float:
        return _radius(b, eta, B)

    eig = np.linalg.eigvals(b.T * b.A)
    if np.any(eig.real <= 0):
        fail("lag_moments", "a TD matrix whose eigenvalues have positive real part (TD is unstable at any lr)", eig)
    lo = 0.0
    hi = 1.0 / float(np.max(np.abs(eig)))
    while radius(hi) < 1.0:
        lo, hi = hi, 2 * hi
    it = 0
    while hi - lo > tol * hi and it < 200:
        mid = 0.5 * (lo + hi)
        if radius(mid) < 1.0:
            lo = mid
        else:
            hi = mid
        it += 1
    if it >= 200:
        warn_not_converged("max_stable_lr", "bisection did not reach the requested tolerance")
    return lo


# --------------------------------------------------------------------------- exact finite-chain recursion
@dataclass(frozen=True, kw_only=True)
class MarkovTDCurveResult(SolverResult):
    """Exact TD(0) learning curve on a finite Markov chain (:func:`markov_td_learning_curve`).

    Attributes
    ----------
    steps : ndarray, shape (n_steps + 1,)
    value_error : ndarray, shape (n_steps + 1,)
        ``E[(w_k - w_V)^T S (w_k - w_V)]`` with ``S = E_pi[phi phi^T]`` (the same value error as
        :class:`TDCurveResult`); ``inf`` after a blow-up.
    mean_error : ndarray, shape (n_steps + 1,)
        ``m_k^T S m_k`` for the mean error ``m_k = E[w_k] - w_V``.
    w_value : ndarray, shape (N,)
        TD fixed point.
    diverged : bool
    stable : bool or None
        Mean-square stability of a constant learning rate (None for schedules or ``plateau=False``).
    spectral_radius : float or None
    plateau : float or None
        Asymptotic value error for a constant stable learning rate (``inf`` if unstable).
    """

    steps: np.ndarray
    value_error: np.ndarray
    mean_error: np.ndarray
    w_value: np.ndarray
    diverged: bool
    stable: bool | None
    spectral_radius: float | None
    plateau: float | None


def _pair_sum(P, pi, W, T, a, b):
    """``E[sum_{t, t' < T} a(e_t) (x) b(e_t')]`` over the transitions ``e_t = (s_t, s_{t+1})`` of a
    stationary episode of length T; ``a``: (n, n, *A), ``b``: (n, n, *B); ``W = sum_{k=1}^{T-1}
    (T - k) P^(k-1)`` counts the ordered pairs with gap k (``T`` enters through the diagonal)."""
    joint = pi[:, None] * P  # probability of the transition (s, s')
    na, nb = a.ndim - 2, b.ndim - 2
    A_idx = "ABCD"[:na]
    B_idx = "EFGH"[:nb]
    diag = np.einsum(f"st,st{A_idx},st{B_idx}->{A_idx}{B_idx}", joint, a, b, optimize=True)
    out = T * diag
    if T > 1:
        a_in = np.einsum("st,st...->t...", joint, a)   # mean of a over transitions arriving in t
        b_in = np.einsum("st,st...->t...", joint, b)
        a_out = np.einsum("st,st...->s...", P, a)      # conditional mean of a leaving s
        b_out = np.einsum("st,st...->s...", P, b)
        Wb = np.einsum("su,u...->s...", W, b_out)
        Wa = np.einsum("su,u...->s...", W, a_out)
        out = out + np.einsum(f"s{A_idx},s{B_idx}->{A_idx}{B_idx}", a_in, Wb, optimize=True)
        out = out + np.einsum(f"s{A_idx},s{B_idx}->{A_idx}{B_idx}", Wa, b_in, optimize=True)
    return out


def _episode_statistics(P, pi, Phi, r, gamma, T, s2):
    """Exact moments of one episode's semi-gradient ``G = xi + H D`` (see markov_td_learning_curve)."""
    n, N = Phi.shape
    S0 = Phi.T @ (pi[:, None] * Phi)
    A = S0 - gamma * Phi.T @ (pi[:, None] * (P @ Phi))
    w_value = np.linalg.solve(A, Phi.T @ (pi * r))
    psi = gamma * Phi[None, :, :] - Phi[:, None, :]               # (s, s', N): gamma phi(s') - phi(s)
    X = Phi[:, None, :, None] * psi[:, :, None, :]                 # (s, s', N, N): phi(s) psi^T
    xi = Phi[:, None, :] * (r[:, None] + psi @ w_value)[:, :, None]  # (s, s', N): phi(s) delta_V
    Pk, W = np.eye(n), np.zeros((n, n))
    for k in range(1, T):
        W += (T - k) * Pk
        Pk = Pk @ P
    EH = -T * A
    EHH = _pair_sum(P, pi, W, T, X, X).transpose(0, 2, 1, 3).reshape(N * N, N * N)  # E[kron(H, H)]
    EHx = _pair_sum(P, pi, W, T, X, xi)                               # (N, N, N): E[H_jk xi_l]
    Exx = _pair_sum(P, pi, W, T, xi, xi) + s2 * T * S0
    return S0, A, w_value, EH, EHH, EHx, Exx


def _markov_step(stats, C, m, lr, B):
    S0, A, w_value, EH, EHH, EHx, Exx = stats
    N = m.shape[0]
    HC = EH @ C
    cross = np.einsum("jkl,k->jl", EHx, m)
    EGG = Exx + (EHH @ C.ravel()).reshape(N, N) + cross + cross.T
    C_new = C + lr * (HC + HC.T) + lr**2 * ((1 - 1 / B) * HC @ EH.T + EGG / B)
    return 0.5 * (C_new + C_new.T), m + lr * (EH @ m)


def markov_td_learning_curve(
    transition,
    features,
    rewards,
    *,
    discount: float,
    lr,
    n_steps: int,
    batch_size: int = 1,
    episode_length: int = 1,
    reward_noise: float = 0.0,
    w_init=None,
    plateau: bool = True,
    sampling: str = "episodes",
) -> MarkovTDCurveResult:
    """Exact learning curve of minibatch TD(0) on a finite Markov chain (no Gaussian assumption).

    The setting of :func:`td_learning_curve` and :func:`lmech.sim.td.simulate_td_chain` in
    Bordelon, Masset, Kuo & Pehlevan, "Loss Dynamics of Temporal Difference Reinforcement
    Learning": each update uses B independent episodes of T transitions started from the
    stationary distribution ``pi`` (T = 1: i.i.d. transitions), with weights fixed during an
    episode. With the weight error ``D = w - w_V`` one episode's semi-gradient is affine in D,

        G = xi + H D,   H = sum_{t<T} phi(s_t) psi_t^T,   xi = sum_{t<T} phi(s_t) (r_t + psi_t . w_V),
        psi_t = gamma phi(s_{t+1}) - phi(s_t),

    and independent of D (fresh episodes), so the first two moments ``m = E D``, ``C = E D D^T``
    close exactly:

    Equation (eq:td.markov_exact): ``m_{k+1} = (I + lr E H) m_k,
        C_{k+1} = C_k + lr (E[H] C_k + C_k E[H]^T) + lr^2 [ (1 - 1/B) E[H] C_k E[H]^T
                  + (1/B) (E[xi xi^T] + E[H C_k H^T] + E[H m_k xi^T] + E[xi m_k^T H^T]) ],
        value error = tr(S C_k)``

    ``E[H] = -T A`` (``A = S(0) - gamma S(1)``) and ``E[xi] = 0``. The fourth-order episode moments
    ``E[H (x) H]``, ``E[H (x) xi]``, ``E[xi xi^T]`` are sums over pairs of transitions
    ``(t, t')`` of the finite chain, computed exactly from ``pi`` and powers of ``P`` (the
    Gaussian-equivalent theory replaces them by Wick's theorem on the second moments). Cost:
    O(n^2 N^4) set-up, O(N^4) per step; meant for N up to a few tens.

    ``sampling="online"``: one continuing trajectory from ``s_0 ~ pi``, the weights updated after
    every transition (``D <- (I + lr X(s, s')) D + lr xi(s, s')``, X and xi the one-transition
    H and xi). D now depends on the current state, so the recursion tracks the moments joint
    with it, ``m_s = E[D 1{s_t = s}]`` and ``C_s = E[D D^T 1{s_t = s}]`` (size n N^2):

        m'_{s'} = sum_s P(s, s') [(I + lr X) m_s + lr xi p_s],
        C'_{s'} = sum_s P(s, s') [(I + lr X) C_s (I + lr X)^T + lr ((I + lr X) m_s xi^T + transpose)
                                  + lr^2 (xi xi^T + reward_noise phi phi^T) p_s],

    with ``p_s = pi_s`` and the value error ``tr(S sum_s C_s)``; cost O(n^2 N^2) per step.
    ``batch_size`` and ``episode_length`` must be 1 and no plateau is computed.

    Parameters
    ----------
    transition : array_like, shape (n, n)
        Row-stochastic, ergodic transition matrix.
    features : array_like, shape (n, N)
        ``phi(s)``; ``E_pi[phi phi^T]`` must be positive definite.
    rewards : array_like, shape (n,)
        Mean reward in each state.
    discount, lr, n_steps, batch_size, episode_length, reward_noise, w_init, plateau
        As in :func:`td_learning_curve` (reward noise: i.i.d., variance ``reward_noise``).
    sampling : {"episodes", "online"}
        Fresh stationary episodes per update (default; the setting of
        :func:`lmech.sim.td.simulate_td_chain`), or per-transition updates along one trajectory
        (:func:`lmech.sim.td.simulate_td_online`).

    Returns
    -------
    MarkovTDCurveResult
        ``status="closed_form"`` (``iterations = n_steps``, ``residual`` NaN); ``"diverged"`` with a
        ConvergenceWarning after a blow-up.
    """
    P = _check_transition(transition)
    n = P.shape[0]
    Phi = check_array(features, "features", ndim=2, max_abs=MAX_MAGNITUDE)
    if Phi.shape[0] != n:
        fail("features", f"of shape ({n}, N) (one row per state)", Phi)
    r = check_array(rewards, "rewards", shape=(n,))
    gamma = check_real(discount, "discount", lo=0.0, hi=1.0, hi_closed=False)
    B = check_int(batch_size, "batch_size", lo=1)
    T = check_int(episode_length, "episode_length", lo=1)
    s2 = check_real(reward_noise, "reward_noise", lo=0.0)
    steps = check_int(n_steps, "n_steps", lo=0, hi=10**6)
    lr_arr = check_array(lr, "lr", ndim=(0, 1), positive=True, max_abs=MAX_MAGNITUDE)
    constant = lr_arr.ndim == 0
    if not constant and lr_arr.shape != (steps,):
        fail("lr", f"a positive scalar or an array of shape (n_steps,) = ({steps},)", lr_arr)
    lrs = np.full(steps, float(lr_arr)) if constant else lr_arr
    check_choice(sampling, "sampling", ("episodes", "online"))
    if sampling == "online" and (B != 1 or T != 1):
        fail("batch_size", "1 with episode_length 1 for sampling='online'", (B, T))
    pi = stationary_distribution(P)
    N = Phi.shape[1]
    S0 = Phi.T @ (pi[:, None] * Phi)
    ev = np.linalg.eigvalsh(S0)
    if ev.min() <= 1e-12 * max(ev.max(), 1e-300):
        fail("features", "features whose stationary second moment E_pi[phi phi^T] is positive definite",
             f"min eigenvalue {ev.min():.3g}")
    A = S0 - gamma * Phi.T @ (pi[:, None] * (P @ Phi))
    if np.linalg.cond(A) > 1e12:
        fail("transition", "a chain whose TD matrix S(0) - discount S(1) is invertible", f"cond {np.linalg.cond(A):.3g}")
    w0 = np.zeros(N) if w_init is None else check_array(w_init, "w_init", shape=(N,))
    if sampling == "online":
        return _markov_online(P, pi, Phi, r, gamma, s2, lrs, w0, S0, A)
    stats = _episode_statistics(P, pi, Phi, r, gamma, T, s2)
    w_value = stats[2]
    m = w0 - w_value
    C = np.outer(m, m)
    ve = np.full(steps + 1, np.inf)
    me = np.full(steps + 1, np.inf)
    ve[0], me[0] = float(np.trace(S0 @ C)), float(m @ S0 @ m)
    limit = _DIVERGENCE_FACTOR * max(ve[0], float(w_value @ S0 @ w_value), float(np.trace(stats[6])), 1e-300)
    diverged, k = False, 0
    for k in range(steps):
        C, m = _markov_step(stats, C, m, lrs[k], B)
        v = float(np.trace(S0 @ C))
        if not np.isfinite(v) or v > limit:
            diverged = True
            break
        ve[k + 1], me[k + 1] = v, float(m @ S0 @ m)
    stable = radius = plat = None
    if constant and plateau:
        stable, radius, plat = _markov_asymptotics(stats, float(lr_arr), B)
    status, message = "closed_form", "exact moment recursion on the finite chain"
    if diverged:
        status = "diverged"
        message = f"value error diverges: exceeded {_DIVERGENCE_FACTOR:g} x its scale at step {k + 1}"
        warn_not_converged("markov_td_learning_curve", message)
    elif stable is False:
        message = "learning rate is mean-square unstable: the value error diverges at long times"
    return MarkovTDCurveResult(
        steps=np.arange(steps + 1), value_error=ve, mean_error=me, w_value=w_value, diverged=diverged,
        stable=stable, spectral_radius=radius, plateau=plat, converged=status == "closed_form", status=status,
        iterations=steps, residual=float("nan"), message=message)


def _markov_asymptotics(stats, lr, B):
    """(stable, spectral radius, plateau) of the constant-lr recursion (m -> 0 at the fixed point)."""
    S0, A, w_value, EH, EHH, EHx, Exx = stats
    N = S0.shape[0]
    eye = np.eye(N)
    op = (np.eye(N * N) + lr * (np.kron(EH, eye) + np.kron(eye, EH))
          + lr**2 * ((1 - 1 / B) * np.kron(EH, EH) + EHH / B))
    r_m = float(np.max(np.abs(np.linalg.eigvals(eye + lr * EH))))
    radius = max(_spectral_radius(op), r_m)
    if radius >= 1.0:
        return False, radius, float("inf")
    c_inf = np.linalg.solve(np.eye(N * N) - op, (lr**2 / B) * Exx.ravel()).reshape(N, N)
    return True, radius, float(np.trace(S0 @ c_inf))


def _markov_online(P, pi, Phi, r, gamma, s2, lrs, w0, S0, A):
    """State-augmented exact recursion for per-transition TD(0) along one trajectory."""
    n, N = Phi.shape
    w_value = np.linalg.solve(A, Phi.T @ (pi * r))
    psi = gamma * Phi[None, :, :] - Phi[:, None, :]               # (s, s', N)
    delta_v = r[:, None] + psi @ w_value                            # (s, s') TD error at w_V
    m = pi[:, None] * (w0 - w_value)[None, :]                       # E[D 1{s_t = s}]
    C = pi[:, None, None] * np.outer(w0 - w_value, w0 - w_value)[None]
    steps = len(lrs)
    ve = np.full(steps + 1, np.inf)
    me = np.full(steps + 1, np.inf)
    mt = m.sum(0)
    ve[0], me[0] = float(np.trace(S0 @ C.sum(0))), float(mt @ S0 @ mt)
    limit = _DIVERGENCE_FACTOR * max(ve[0], float(w_value @ S0 @ w_value), float(np.trace(S0)), 1e-300)
    pp = np.einsum("s,si,sj->sij", pi, Phi, Phi)                   # pi_s phi phi^T
    diverged, k = False, 0
    for k in range(steps):
        lr = lrs[k]
        # (I + lr phi psi^T) C (.)^T = C + lr (phi (C psi)^T + (C psi) phi^T) + lr^2 (psi.C psi) phi phi^T
        Cpsi = np.einsum("sij,stj->sti", C, psi)                   # (s, s', N)
        psiCpsi = np.einsum("sti,sti->st", Cpsi, psi)
        mpsi = np.einsum("si,sti->st", m, psi)                      # psi . m_s
        Pw = P                                                      # weights P(s, s')
        # sums over s of P(s, s') [...] for each s'
        new_C = np.einsum("st,sij->tij", Pw, C)
        term = np.einsum("st,sti,sj->tij", Pw, Cpsi, Phi)          # sum P (C psi) phi^T
        new_C += lr * (term + term.transpose(0, 2, 1))
        new_C += lr**2 * np.einsum("st,st,si,sj->tij", Pw, psiCpsi, Phi, Phi)
        # cross terms lr ((I + lr X) m xi^T + transpose), xi = phi delta_v, X m = phi (psi . m)
        cross = np.einsum("st,si,st,sj->tij", Pw, m, delta_v, Phi)
        cross += lr * np.einsum("st,st,st,si,sj->tij", Pw, mpsi, delta_v, Phi, Phi)
        new_C += lr * (cross + cross.transpose(0, 2, 1))
        new_C += lr**2 * np.einsum("st,st,sij->tij", Pw, delta_v**2 + s2, pp)
        m = np.einsum("st,si->ti", Pw, m) + lr * np.einsum("st,st,si->ti", Pw, mpsi + pi[:, None] * delta_v, Phi)
        C = 0.5 * (new_C + new_C.transpose(0, 2, 1))
        v = float(np.trace(S0 @ C.sum(0)))
        if not np.isfinite(v) or v > limit:
            diverged = True
            break
        mt = m.sum(0)
        ve[k + 1], me[k + 1] = v, float(mt @ S0 @ mt)
    status, message = "closed_form", "exact state-augmented moment recursion (online TD along one trajectory)"
    if diverged:
        status = "diverged"
        message = f"value error diverges: exceeded {_DIVERGENCE_FACTOR:g} x its scale at step {k + 1}"
        warn_not_converged("markov_td_learning_curve", message)
    return MarkovTDCurveResult(
        steps=np.arange(steps + 1), value_error=ve, mean_error=me, w_value=w_value, diverged=diverged,
        stable=None, spectral_radius=None, plateau=None, converged=status == "closed_form", status=status,
        iterations=steps, residual=float("nan"), message=message)
