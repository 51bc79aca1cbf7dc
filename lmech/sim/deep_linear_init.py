"""Finite deep linear networks trained from random initialization (torch, batched over runs).

The real system of "Deep Linear Network Training Dynamics from Random Initialization: Data,
Width, Depth, and Hyperparameter Transfer" (Bordelon & Pehlevan). Inputs ``x ~ N(0, diag(lam))``
in ``D`` dimensions, a linear teacher ``y = beta_* . x / sqrt(D) (+ noise)``, and a network of
width ``N`` with ``depth = L`` hidden layers, all weights i.i.d. ``N(0, 1)``::

    h^1 = W^0 x / sqrt(D),
    h^{l+1} = W^l h^l / sqrt(N)                          (plain, l = 1..L-1), or
    h^{l+1} = h^l + (branch / sqrt(L)) W^l h^l / sqrt(N) (residual, l = 1..L: L branches),
    f = s * w . h^last,

    muP (mean-field):  s = sqrt(D) / (gamma0 N),   raw step  theta -= lr gamma0^2 N grad,
    NTP (NTK param.):  s = 1 / (gamma0 sqrt(N)),   raw step  theta -= lr gamma0^2 D grad.

``grad`` is the gradient of the batch-mean loss ``(1/2B) sum_b (y_b - f_b)^2``. In both
parameterizations the function-space step is ``f <- f + lr K Delta`` with an O(1) tangent kernel
on inputs of norm ``sqrt(D)`` (lazy kernel ``(L+1) x.x'/D`` as ``N -> inf``); the two coincide at
``N = D``. muP's richness ``gamma0`` is width-independent; NTP is muP with richness
``gamma0 sqrt(D/N)`` (lazy as ``N -> inf``) and keeps an O(1/gamma0) random initial output.

Training: ``data="online"`` draws a fresh batch of ``B`` samples each step (one-pass SGD);
``data="repeated"`` fixes ``P`` samples per run and takes full-batch GD steps on them;
``data="population"`` takes the exact gradient of the population loss (infinite batch). The
reported test loss is always the exact population loss ``(1/2D) sum_k lam_k (beta_k -
beta*_k)^2 (+ noise^2/2)`` of the end-to-end vector ``beta`` (``f(x) = beta . x / sqrt(D)``).
All runs (seeds x learning rates) are one batched tensor program.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmech._validation import check_array, check_choice, check_int, check_real, fail

__all__ = ["DeepLinearRunResult", "train_deep_linear", "end_to_end", "optimal_lr"]


@dataclass(frozen=True)
class DeepLinearRunResult:
    """Measured learning curves, one row per run.

    Attributes
    ----------
    steps : ndarray (n,)                 recorded step indices ``0, every, 2 every, ..., steps``
    lrs : ndarray (n_lr,)                learning rates (runs are lr-major: run = i_lr * n_seeds + seed)
    test_loss : ndarray (n_lr, n_seeds, n)   population loss of every run
    train_loss : ndarray or None         training loss on the repeated samples (``data="repeated"``)
    mean, stderr : ndarray (n_lr, n)     mean over seeds of ``test_loss`` and its standard error
    diverged : ndarray (n_lr,) bool      some seed's loss became non-finite or exceeded 1e6
    """

    steps: np.ndarray
    lrs: np.ndarray
    test_loss: np.ndarray
    train_loss: np.ndarray | None
    mean: np.ndarray
    stderr: np.ndarray
    diverged: np.ndarray


def end_to_end(Ws: list[torch.Tensor], w: torch.Tensor, *, scale: float, residual: bool, branch: float
               ) -> torch.Tensor:
    """End-to-end vectors ``beta`` (R, D) with ``f(x) = beta . x / sqrt(D)``: a backward pass from ``w``."""
    N = w.shape[-1]
    v = w
    hidden = Ws[1:]
    c = branch / np.sqrt(len(hidden)) if residual and hidden else 1.0
    for W in reversed(hidden):
        back = torch.einsum("rij,ri->rj", W, v) / np.sqrt(N)
        v = v + c * back if residual else back
    return scale * torch.einsum("rij,ri->rj", Ws[0], v)


def _forward(Ws, w, X, *, scale, residual, branch):
    N = w.shape[-1]
    D = X.shape[-1]
    h = torch.einsum("rij,rbj->rbi", Ws[0], X) / np.sqrt(D)
    hidden = Ws[1:]
    c = branch / np.sqrt(len(hidden)) if residual and hidden else 1.0
    for W in hidden:
        z = torch.einsum("rij,rbj->rbi", W, h) / np.sqrt(N)
        h = h + c * z if residual else z
    return scale * torch.einsum("rbi,ri->rb", h, w)


def train_deep_linear(
    *,
    dim: int,
    width: int,
    depth: int,
    lr,
    steps: int,
    gamma0: float = 1.0,
    param: str = "mup",
    residual: bool = False,
    branch: float = 1.0,
    data: str = "online",
    batch_size: int = 64,
    n_samples: int | None = None,
    samples=None,
    spectrum=None,
    target=None,
    noise: float = 0.0,
    center: bool = False,
    n_seeds: int = 8,
    every: int = 1,
    seed: int = 0,
) -> DeepLinearRunResult:
    """Train ``n_seeds`` randomly initialised deep linear networks per learning rate.

    Parameters
    ----------
    dim, width, depth : int
        Input dimension ``D``, width ``N`` and number of hidden layers ``L`` (residual: ``L``
        branches after the input layer).
    lr : float or sequence of floats
        Function-space learning rate(s) (see the module docstring); each is a batch of runs.
    steps, every : int
        Number of steps and the recording stride (``steps`` must be a multiple of ``every``).
    gamma0 : float
        Richness (> 0).
    param : {"mup", "ntp"}
    residual, branch :
        Residual network with branch multiplier ``branch / sqrt(L)``.
    data : {"online", "repeated", "population"}
    batch_size : int
        Fresh samples per step (online).
    n_samples : int
        Samples reused every step (repeated).
    samples : array (n_seeds, P, D), optional
        The repeated samples of each seed (default: drawn from ``seed``); labels come from ``target``.
    spectrum : array (D,), optional
        Input covariance eigenvalues ``lam`` (default all ones: whitened).
    target : array (D,), optional
        Teacher ``beta_*`` (default: a Gaussian vector rescaled to ``|beta_*|^2 = D``, drawn once
        from ``seed``).
    noise : float
        Label noise standard deviation.
    center : bool
        Subtract the initial function (``f - f_0``, i.e. ``beta - beta_0``): removes the random
        initial output, O(sqrt(D/N)/gamma0) in muP, so that small ``gamma0`` is the lazy limit.
    n_seeds, seed : int
        Independent initialisations per learning rate and the base seed.
    """
    D = check_int(dim, "dim", lo=1, hi=10**5)
    N = check_int(width, "width", lo=1, hi=10**5)
    L = check_int(depth, "depth", lo=1, hi=1000)
    T = check_int(steps, "steps", lo=1, hi=10**6)
    ev = check_int(every, "every", lo=1, hi=T)
    if T % ev:
        fail("steps", f"a multiple of every={ev}", T)
    S = check_int(n_seeds, "n_seeds", lo=1, hi=10**5)
    g0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    check_choice(param, "param", ("mup", "ntp"))
    check_choice(data, "data", ("online", "repeated", "population"))
    sig = check_real(noise, "noise", lo=0.0)
    br = check_real(branch, "branch", lo=0.0)
    lrs = check_array(np.atleast_1d(np.asarray(lr, dtype=float)), "lr", ndim=1, positive=True)
    if not residual and br != 1.0:
        fail("branch", "1.0 without residual=True", branch)
    lam = np.ones(D) if spectrum is None else check_array(spectrum, "spectrum", ndim=1, nonnegative=True)
    if lam.shape != (D,):
        fail("spectrum", f"of shape ({D},)", lam)
    gen = torch.Generator().manual_seed(int(seed))
    if target is None:
        b = torch.randn(D, generator=gen, dtype=torch.float64)
        bstar = b * np.sqrt(D) / b.norm()
    else:
        bstar = torch.as_tensor(check_array(target, "target", ndim=1), dtype=torch.float64)
        if bstar.shape != (D,):
            fail("target", f"of shape ({D},)", target)
    R = len(lrs) * S
    scale = np.sqrt(D) / (g0 * N) if param == "mup" else 1.0 / (g0 * np.sqrt(N))
    raw = torch.as_tensor(np.repeat(lrs, S) * g0 ** 2 * (N if param == "mup" else D), dtype=torch.float64)
    # the same S initialisations for every learning rate; input and readout weights are drawn first,
    # so runs of different depth with the same seed share them (common random numbers)
    init = [torch.randn(S, N, D, generator=gen, dtype=torch.float64)]
    w = torch.randn(S, N, generator=gen, dtype=torch.float64).repeat(len(lrs), 1).requires_grad_(True)
    init += [torch.randn(S, N, N, generator=gen, dtype=torch.float64) for _ in range(L if residual else L - 1)]
    Ws = [W.repeat(len(lrs), 1, 1).requires_grad_(True) for W in init]
    params = Ws + [w]
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    kw = dict(scale=scale, residual=residual, branch=br)
    with torch.no_grad():
        beta0 = end_to_end(Ws, w, **kw) if center else torch.zeros(R, D, dtype=torch.float64)

    def draw(n):
        X = torch.randn(R, n, D, generator=gen, dtype=torch.float64) * lam_t.sqrt()
        y = X @ bstar / np.sqrt(D) + sig * torch.randn(R, n, generator=gen, dtype=torch.float64)
        return X, y

    def pop_loss():
        beta = end_to_end(Ws, w, **kw) - beta0
        return 0.5 * ((beta - bstar) ** 2 * lam_t).sum(-1) / D + 0.5 * sig ** 2

    if data == "repeated":
        P = check_int(n_samples, "n_samples", lo=1, hi=10**6)
        Xr = torch.randn(S, P, D, generator=gen, dtype=torch.float64) * lam_t.sqrt() if samples is None else \
            torch.as_tensor(check_array(samples, "samples", shape=(S, P, D)))
        yr = Xr @ bstar / np.sqrt(D) + sig * torch.randn(S, P, generator=gen, dtype=torch.float64)
        Xr, yr = Xr.repeat(len(lrs), 1, 1), yr.repeat(len(lrs), 1)
    else:
        check_int(batch_size, "batch_size", lo=1, hi=10**6)
    test, train = [], []
    for t in range(T + 1):
        if data == "population":
            loss = pop_loss()
        else:
            X, y = (Xr, yr) if data == "repeated" else draw(batch_size)
            f = _forward(Ws, w, X, **kw) - torch.einsum("rbd,rd->rb", X, beta0) / np.sqrt(D)
            loss = 0.5 * ((y - f) ** 2).mean(-1)
        if t % ev == 0:
            with torch.no_grad():
                test.append(pop_loss().detach().clone() if data != "population" else loss.detach().clone())
                if data == "repeated":
                    train.append(loss.detach().clone())
        if t == T:
            break
        grads = torch.autograd.grad(loss.sum(), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= raw.view(-1, *([1] * (p.dim() - 1))) * g
                p.nan_to_num_(nan=1e30, posinf=1e30, neginf=-1e30)
    tl = torch.stack(test, -1).numpy().reshape(len(lrs), S, -1)
    bad = ~np.isfinite(tl) | (tl > 1e6)
    diverged = bad.any(axis=(1, 2))
    tl = np.where(bad, np.inf, tl)
    with np.errstate(invalid="ignore"):
        mean = tl.mean(1)
        se = tl.std(1, ddof=1) / np.sqrt(S) if S > 1 else np.zeros_like(mean)
    trl = torch.stack(train, -1).numpy().reshape(len(lrs), S, -1) if train else None
    return DeepLinearRunResult(np.arange(0, T + 1, ev), lrs, tl, trl, mean, se, diverged)


def optimal_lr(lrs, loss) -> float:
    """Loss-minimising learning rate: vertex of a parabola in (log lr, log loss) through the best grid
    point and its two neighbours (the best grid point itself if the parabola opens downwards)."""
    lrs, loss = np.asarray(lrs, dtype=float), np.asarray(loss, dtype=float)
    if lrs.ndim != 1 or lrs.size < 3 or loss.shape != lrs.shape:
        fail("lrs", "a 1-d grid of at least 3 learning rates matching `loss`", lrs)
    i = int(np.clip(np.argmin(loss), 1, lrs.size - 2))
    x, y = np.log(lrs[i - 1:i + 2]), np.log(loss[i - 1:i + 2])
    c = np.polyfit(x, y, 2)
    return float(np.exp(np.clip(-c[1] / (2 * c[0]), x[0], x[2]) if c[0] > 0 else x[1]))
