"""Random-feature models trained by gradient descent / gradient flow, in PyTorch.

The real system behind :mod:`lmech.theory.scaling` ("A Dynamical Model of Neural Scaling
Laws", Bordelon, Atanasov & Pehlevan): Gaussian latent features x ~ N(0, diag(lam)),
target y = w* . x + noise, a Gaussian projection F (N x M), model f = a . F x / sqrt(N)
trained from a = 0 on the loss (1/2P) sum_mu (f(x_mu) - y_mu)^2 (or on the population loss
when P is infinite). Test losses are computed exactly from the known covariance
(L = (v - w*)^T Lambda (v - w*) with v = F^T a / sqrt(N)); no test sampling.

Training is done exactly in the eigenbasis of the (empirical) feature covariance
(``method="spectral"``: gradient flow e^{-t S}, or gradient descent (1 - lr S)^steps), or
by literally iterating gradient-descent steps (``method="loop"``; small problems only).
Both give the same iterates; the loop exists to test that claim.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from lmech._validation import MAX_SIZE, check_array, check_choice, check_int, check_real, fail

__all__ = ["RFSimulation", "simulate_rf", "BottleneckSimulation", "simulate_bottlenecks"]


@dataclass(frozen=True)
class RFSimulation:
    """Measured losses of random-feature models (mean over independent draws).

    Attributes
    ----------
    t : ndarray, shape (T,)
        Gradient-flow time (learning rate x steps).
    loss, loss_se : ndarray, shape (T,)
        Mean test loss (noise-free target) and its standard error over draws.
    train_loss, train_se : ndarray, shape (T,) or None
        Mean training loss (1/P) sum (f - y)^2 and standard error (finite P only).
    losses : ndarray, shape (draws, T)
        Test loss of every draw.
    """

    t: np.ndarray
    loss: np.ndarray
    loss_se: np.ndarray
    train_loss: np.ndarray | None
    train_se: np.ndarray | None
    losses: np.ndarray
    settings: dict = field(default_factory=dict)


def _decay(mu: torch.Tensor, t: torch.Tensor, lr: float | None) -> torch.Tensor:
    """exp(-t mu) (gradient flow) or (1 - lr mu)^(t/lr) (gradient descent); shape (T, n)."""
    if lr is None:
        return torch.exp(-t[:, None] * mu[None, :])
    steps = torch.round(t / lr)
    base = 1.0 - lr * mu
    return torch.sign(base)[None, :] ** steps[:, None] * torch.abs(base)[None, :] ** steps[:, None]


def _steps_ok(t, lr):
    if lr is None:
        return
    steps = t / lr
    if np.any(np.abs(steps - np.round(steps)) > 1e-8 * np.maximum(steps, 1)):
        fail("t", f"a multiple of lr={lr} (t is learning rate x steps)", t)


def _population_fit(Z, b_vec, t, lr, method):
    """Gradient flow/descent on the population loss with feature covariance S = Z Z^T/N.

    Returns coefficients a(t) for every t, shape (T, N)."""
    N = Z.shape[0]
    S = Z @ Z.T / N
    if method == "loop":
        steps = np.round(t.cpu().numpy() / lr).astype(int)
        a = torch.zeros(N, dtype=Z.dtype)
        out, k = [], 0
        for target in steps:
            while k < target:
                a = a - lr * (S @ a - b_vec)
                k += 1
            out.append(a.clone())
        return torch.stack(out)
    mu, U = torch.linalg.eigh(S)
    mu = torch.clamp(mu, min=0.0)
    c = U.T @ b_vec
    dec = _decay(mu, t, lr)
    # a(t) = U diag((1 - dec)/mu) c ; for mu = 0 the coefficient is t (or steps * lr)
    safe = torch.where(mu > 0, mu, torch.ones_like(mu))
    coef = torch.where(mu[None, :] > 0, (1 - dec) / safe[None, :], t[:, None].expand(-1, len(mu)))
    return (coef * c[None, :]) @ U.T


def _empirical_fit(Phi, y, t, lr, method):
    """Gradient flow/descent on (1/2P)||Phi a - y||^2 from a = 0; returns a(t), shape (T, D)."""
    P, D = Phi.shape
    if method == "loop":
        steps = np.round(t.cpu().numpy() / lr).astype(int)
        a = torch.zeros(D, dtype=Phi.dtype)
        out, k = [], 0
        g0 = Phi.T @ y / P
        for target in steps:
            while k < target:
                a = a - lr * (Phi.T @ (Phi @ a) / P - g0)
                k += 1
            out.append(a.clone())
        return torch.stack(out)
    # dual (P x P) eigen-decomposition: Phi Phi^T / P = U diag(mu) U^T
    K = Phi @ Phi.T / P
    mu, U = torch.linalg.eigh(K)
    keep = mu > 1e-12 * torch.clamp(mu.max(), min=1e-300)
    mu, U = mu[keep], U[:, keep]
    V = Phi.T @ U / torch.sqrt(P * mu)[None, :]          # (D, r) orthonormal right vectors
    proj = torch.sqrt(mu / P) * (U.T @ y)                 # V^T Phi^T y / P
    dec = _decay(mu, t, lr)
    coef = (1 - dec) / mu[None, :]
    return (coef * proj[None, :]) @ V.T


def simulate_rf(
    eigenvalues,
    target_power,
    t,
    *,
    N: int | None = None,
    P: int | None = None,
    noise: float = 0.0,
    ensemble: int = 1,
    draws: int = 10,
    lr: float | None = None,
    seed: int = 0,
    method: str = "spectral",
) -> RFSimulation:
    """Train random-feature models and measure their exact test (and train) losses.

    Parameters
    ----------
    eigenvalues : array_like, shape (M,)
        Latent covariance eigenvalues lam_k > 0 (the latent dimension is M).
    target_power : array_like, shape (M,)
        p_k = lam_k w*_k^2 >= 0; w*_k = sqrt(p_k / lam_k).
    t : array_like, shape (T,)
        Times (learning rate x steps). With ``lr`` given they must be multiples of ``lr``.
    N : int, optional
        Number of random features; None trains the linear model on x itself.
    P : int, optional
        Number of training samples; None trains on the population loss (infinite data).
    noise : float
        Label-noise variance of the training labels (finite P).
    ensemble : int
        Number of independently projected models averaged (predictor average) per draw.
    draws : int
        Independent repetitions (new F, new data) for the mean and its standard error.
    lr : float, optional
        Learning rate of gradient descent; None = gradient flow.
    seed : int
        Seed of the torch generator (same seed, same numbers).
    method : {"spectral", "loop"}
        Exact eigenbasis solution or literal gradient-descent iterations (needs ``lr``).

    Returns
    -------
    RFSimulation
    """
    lam_np = check_array(eigenvalues, "eigenvalues", ndim=1, positive=True, min_size=1)
    p_np = check_array(target_power, "target_power", ndim=1, nonnegative=True)
    if p_np.shape != lam_np.shape:
        fail("target_power", f"of shape {lam_np.shape}", p_np)
    t_np = np.atleast_1d(check_array(t, "t", ndim=(0, 1), positive=True, min_size=1))
    N = None if N is None else check_int(N, "N", lo=1)
    P = None if P is None else check_int(P, "P", lo=1, hi=MAX_SIZE)
    noise = check_real(noise, "noise", lo=0)
    ensemble = check_int(ensemble, "ensemble", lo=1)
    draws = check_int(draws, "draws", lo=1, hi=MAX_SIZE)
    seed = check_int(seed, "seed", lo=0, hi=2**63 - 1)
    method = check_choice(method, "method", ["spectral", "loop"])
    if lr is not None:
        lr = check_real(lr, "lr", lo=0, lo_closed=False)
    if method == "loop" and lr is None:
        fail("lr", "given when method='loop'", lr)
    if N is None and P is None:
        fail("P", "finite when N is None (the population flow of the plain linear model is a closed form; "
             "see lmech.theory.scaling.rf_loss_curve)", P)
    if ensemble > 1 and N is None:
        fail("ensemble", "1 when N is None (there is no projection to ensemble over)", ensemble)
    _steps_ok(t_np, lr)

    dt = torch.float64
    gen = torch.Generator().manual_seed(seed)
    lam = torch.as_tensor(lam_np, dtype=dt)
    sq = torch.sqrt(lam)
    wstar = torch.sqrt(torch.as_tensor(p_np, dtype=dt) / lam)
    t_t = torch.as_tensor(t_np, dtype=dt)
    Mdim = len(lam_np)
    losses = np.empty((draws, len(t_np)))
    trains = np.empty((draws, len(t_np))) if P is not None else None

    for d in range(draws):
        if P is not None:
            X = torch.randn(P, Mdim, generator=gen, dtype=dt) * sq
            y = X @ wstar
            if noise > 0:
                y = y + np.sqrt(noise) * torch.randn(P, generator=gen, dtype=dt)
        v_sum = torch.zeros(len(t_np), Mdim, dtype=dt)
        train_sum = torch.zeros(len(t_np), dtype=dt)
        for _ in range(ensemble):
            if N is None:
                w = _empirical_fit(X, y, t_t, lr, method)               # (T, M)
                v = w
                if P is not None:
                    train_sum += ((X @ w.T - y[:, None]) ** 2).mean(0)
            else:
                F = torch.randn(N, Mdim, generator=gen, dtype=dt)
                if P is None:
                    Z = F * sq                                           # rows: Lambda^{1/2}-scaled projections
                    b_vec = (F * lam) @ wstar / np.sqrt(N)
                    a = _population_fit(Z, b_vec, t_t, lr, method)       # (T, N)
                else:
                    Phi = X @ F.T / np.sqrt(N)
                    a = _empirical_fit(Phi, y, t_t, lr, method)
                    train_sum += ((Phi @ a.T - y[:, None]) ** 2).mean(0)
                v = a @ F / np.sqrt(N)                                   # (T, M)
            v_sum += v
        e = v_sum / ensemble - wstar[None, :]
        losses[d] = ((e**2) @ lam).numpy()
        if P is not None:
            trains[d] = (train_sum / ensemble).numpy()

    def se(a):
        return a.std(0, ddof=1) / np.sqrt(draws) if draws > 1 else np.full(a.shape[1], np.nan)

    return RFSimulation(
        t=t_np, loss=losses.mean(0), loss_se=se(losses),
        train_loss=None if trains is None else trains.mean(0),
        train_se=None if trains is None else se(trains),
        losses=losses,
        settings=dict(N=N, P=P, noise=noise, ensemble=ensemble, draws=draws, lr=lr, seed=seed, method=method),
    )


@dataclass(frozen=True)
class BottleneckSimulation:
    """Late-time (t -> inf) test losses for nested sizes, mean over draws.

    Attributes
    ----------
    sizes : ndarray, shape (S,)
        The widths N (``kind="width"``) or sample counts P (``kind="data"``).
    loss, loss_se : ndarray, shape (S,)
        Mean and standard error over draws.
    losses : ndarray, shape (draws, S)
    kind : str
    """

    sizes: np.ndarray
    loss: np.ndarray
    loss_se: np.ndarray
    losses: np.ndarray
    kind: str


def simulate_bottlenecks(eigenvalues, target_power, sizes, *, kind: str = "width", draws: int = 10,
                         seed: int = 0) -> BottleneckSimulation:
    """Width or data bottleneck of gradient flow, measured on nested models.

    ``kind="width"``: online training of width-N random features to t = inf reaches the
    population least-squares fit on the N features, loss L_inf(N|F) = w*^T Lambda w* -
    b^T Sigma_F^{-1} b. ``kind="data"``: training the linear model on P noise-free samples
    to t = inf reaches the min-norm interpolator, loss (Pi w* - w*)^T Lambda (Pi w* - w*)
    with Pi the projection on the span of the P inputs. Within one draw the sizes are
    *nested* (the first N rows of one projection, the first P of one sample), computed
    from one Cholesky / QR factorisation; this correlates the draw noise across sizes and
    so sharpens fitted exponents, while each size is still an exact sample of its model.

    Parameters
    ----------
    eigenvalues, target_power : array_like, shape (M,)
        As in :func:`simulate_rf`.
    sizes : array_like of int, shape (S,)
        Increasing widths or sample counts (each < M).
    kind : {"width", "data"}
    draws, seed : int
    """
    lam_np = check_array(eigenvalues, "eigenvalues", ndim=1, positive=True, min_size=1)
    p_np = check_array(target_power, "target_power", ndim=1, nonnegative=True)
    if p_np.shape != lam_np.shape:
        fail("target_power", f"of shape {lam_np.shape}", p_np)
    sizes_np = check_array(sizes, "sizes", ndim=1, positive=True, min_size=1, dtype=np.int64)
    if np.any(np.diff(sizes_np) <= 0) or sizes_np[-1] >= len(lam_np):
        fail("sizes", f"strictly increasing and below the number of modes {len(lam_np)}", sizes_np)
    kind = check_choice(kind, "kind", ["width", "data"])
    draws = check_int(draws, "draws", lo=1, hi=MAX_SIZE)
    seed = check_int(seed, "seed", lo=0, hi=2**63 - 1)
    dt = torch.float64
    gen = torch.Generator().manual_seed(seed)
    lam = torch.as_tensor(lam_np, dtype=dt)
    wstar = torch.sqrt(torch.as_tensor(p_np, dtype=dt) / lam)
    total = float(wstar @ (lam * wstar))
    n_max = int(sizes_np[-1])
    idx = torch.as_tensor(sizes_np - 1)
    out = np.empty((draws, len(sizes_np)))
    for d in range(draws):
        if kind == "width":
            F = torch.randn(n_max, len(lam_np), generator=gen, dtype=dt)
            S = (F * lam) @ F.T / n_max            # common 1/n_max scale leaves the fits unchanged
            b = (F * lam) @ wstar / np.sqrt(n_max)
            Lc = torch.linalg.cholesky(S)
            z = torch.linalg.solve_triangular(Lc, b[:, None], upper=False)[:, 0]
            out[d] = total - torch.cumsum(z**2, 0)[idx].numpy()
        else:
            X = torch.randn(n_max, len(lam_np), generator=gen, dtype=dt) * torch.sqrt(lam)
            Q, _ = torch.linalg.qr(X.T)             # (M, n_max), nested orthonormal bases
            c = Q.T @ wstar
            h = Q.T @ (lam * wstar)
            G = Q.T @ (lam[:, None] * Q)
            # c_P^T G_PP c_P for every prefix P: cumulative sums of the lower-triangular terms
            row = (G * c[None, :]).tril(-1).sum(1) * c
            quad = torch.cumsum(2 * row + torch.diagonal(G) * c**2, 0)
            out[d] = (total - 2 * torch.cumsum(c * h, 0) + quad)[idx].numpy()
    se = out.std(0, ddof=1) / np.sqrt(draws) if draws > 1 else np.full(len(sizes_np), np.nan)
    return BottleneckSimulation(sizes=sizes_np, loss=out.mean(0), loss_se=se, losses=out, kind=kind)
