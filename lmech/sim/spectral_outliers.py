"""Singular-value spectra of hidden weights, and the top NTK eigenvalue, while MLPs train.

The real system behind Lauditi, Pehlevan & Bordelon, "Spectral Dynamics in Deep Networks:
Feature Learning, Outlier Escape, and Learning Rate Transfer": a three-layer tanh MLP

    h1 = W0 x / sqrt(D),   h2 = W1 phi(h1) / sqrt(N),   f = W2 phi(h2) / (gamma N)

with every weight entry drawn N(0, 1), trained by full-batch gradient descent on the loss
``L = (1/2P) sum_mu |f(x_mu) - y_mu|^2`` at learning rate ``lr * gamma^2 N`` (the mean-field /
muP form of the DMFT papers: function changes O(lr) per step, hidden weights O(gamma lr)).
``param="mup"`` keeps ``gamma = gamma0`` at every width; ``param="ntp"`` is the same network at
``gamma = gamma0 sqrt(base_width / N)`` (NTK parameterization, equal to muP at ``base_width``, lazier
as N grows). ``seeds`` independent networks train at once as one batch (``torch.bmm``), in float64.

Recorded at ``record_steps``: the top-k singular values of the hidden weight ``W1 / sqrt(N)`` and
of its update ``(W1 - W1(0)) / sqrt(N)``, the largest eigenvalue of the learning-rate-weighted
NTK over the training set divided by P (gradient descent on f is stable while lr times it is < 2;
edge of stability at 2 / lr) and the training loss. The model is written out here (rather than with
:class:`lmech.models.MLP`) so that the seeds batch and the per-layer NTK is explicit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from lmech._validation import check_choice, check_int, check_real, fail

__all__ = ["SpectralRun", "train_spectral_mlp", "teacher_task"]


@dataclass(frozen=True)
class SpectralRun:
    """Spectra recorded during training (arrays indexed [seed, record, ...]).

    Attributes
    ----------
    steps : ndarray (R,)                    the recorded steps
    singular_values : ndarray (S, R, k)     top-k singular values of W1 / sqrt(N), descending
    update_singular_values : ndarray (S, R, k)   top-k singular values of (W1 - W1(0)) / sqrt(N)
    ntk_top : ndarray (S, R)                largest eigenvalue of the lr-weighted NTK / P
    loss : ndarray (S, R)                   training loss (1/2P) sum |f - y|^2
    width, param, gamma, lr : the setting (gamma as used at this width)
    final_spectrum : ndarray (S, N) or None all singular values of W1 / sqrt(N) at the last record
    spike_overlap : ndarray (S, k) or None  ``u_i^T (W1(0)/sqrt N) v_i`` for the top-k singular pairs
                                            (u_i, v_i) of the update at the end of training (``record_overlap``)
    diverged : ndarray bool (S,)            the run's loss became non-finite or exceeded 1e6 x its initial value
    init_weight, update : ndarray or None   seed 0's W1(0)/sqrt(N) and final update (``keep_matrices``)
    """

    steps: np.ndarray
    singular_values: np.ndarray
    update_singular_values: np.ndarray
    ntk_top: np.ndarray
    loss: np.ndarray
    width: int
    param: str
    gamma: float
    lr: float
    final_spectrum: np.ndarray | None = None
    spike_overlap: np.ndarray | None = None
    diverged: np.ndarray | None = None
    init_weight: np.ndarray | None = None
    update: np.ndarray | None = None


def teacher_task(P: int, D: int, n_outputs: int = 1, *, noise: float = 0.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs ``x ~ N(0, I_D)`` (P of them) and targets ``y_c = tanh(2 beta_c . x / sqrt(D)) + noise xi``
    for ``n_outputs`` random unit-variance teacher directions ``beta_c``, xi ~ N(0, 1); returns ``(X, Y)``."""
    P, D = check_int(P, "P", lo=1, hi=100_000), check_int(D, "D", lo=1, hi=100_000)
    n_outputs = check_int(n_outputs, "n_outputs", lo=1, hi=100_000)
    noise = check_real(noise, "noise", lo=0.0, hi=1e6)
    gen = np.random.default_rng(check_int(seed, "seed", lo=0))
    X = gen.standard_normal((P, D))
    beta = gen.standard_normal((D, n_outputs))
    return X, np.tanh(2.0 * X @ beta / math.sqrt(D)) + noise * gen.standard_normal((P, n_outputs))


def _forward(X, W0, W1, W2, gamma, N, D):
    h1 = (X @ W0.transpose(1, 2)).mul_(1.0 / math.sqrt(D))          # (S, P, N)
    a1 = torch.tanh(h1)
    h2 = (a1 @ W1.transpose(1, 2)).mul_(1.0 / math.sqrt(N))
    a2 = torch.tanh(h2)
    return h1, a1, h2, a2, a2 @ W2.transpose(1, 2) / (gamma * N)   # f: (S, P, C)


def _ntk_top(X, W1, W2, a1, h1, a2, h2, N, D) -> torch.Tensor:
    """Largest eigenvalue of the lr-weighted NTK / P, K[(mu,c),(nu,c')] = sum_l (grad terms), batched."""
    S, P, C = a2.shape[0], a2.shape[1], W2.shape[1]
    d2 = 1.0 - a2**2                                        # tanh'(h2)
    d1 = 1.0 - a1**2
    g2 = W2[:, None, :, :] * d2[:, :, None, :]              # (S, P, C, N): backprop into h2
    g1 = torch.bmm(g2.reshape(S, P * C, N), W1).reshape(S, P, C, N) / math.sqrt(N) * d1[:, :, None, :]  # into h1
    A2, A1, XX = a2 @ a2.transpose(1, 2) / N, a1 @ a1.transpose(1, 2) / N, X @ X.T / D
    G2 = torch.einsum("spcn,sqdn->spcqd", g2, g2) / N
    G1 = torch.einsum("spcn,sqdn->spcqd", g1, g1) / N
    eye = torch.eye(C, dtype=X.dtype)
    K = (A2[:, :, None, :, None] * eye[None, None, :, None, :] + G2 * A1[:, :, None, :, None]
         + G1 * XX[None, :, None, :, None])
    return torch.linalg.eigvalsh(K.reshape(S, P * C, P * C))[:, -1] / P


def train_spectral_mlp(X, Y, *, width: int, param: str = "mup", gamma0: float = 1.0, lr: float = 1.0,
                       n_steps: int = 100, record_steps=None, top_k: int = 5, seeds: int = 1, seed: int = 0,
                       base_width: int = 128, record_ntk: bool = True, record_spectrum: bool = True,
                       record_overlap: bool = False, keep_matrices: bool = False) -> SpectralRun:
    """Train ``seeds`` three-layer tanh MLPs of hidden width ``width`` by full-batch GD; see the module.

    Parameters
    ----------
    X, Y : arrays (P, D) and (P, C)        inputs and targets (e.g. from :func:`teacher_task`)
    width : int                            hidden width N (the recorded matrix W1 is N x N)
    param : {"mup", "ntp"}                 gamma0 at every width, or gamma0 sqrt(base_width / N)
    gamma0, lr : float                     feature-learning strength and learning rate (> 0)
    n_steps : int                          gradient steps
    record_steps : iterable of int or None steps to record (default: 0, n_steps/4, ..., n_steps)
    top_k : int                            singular values kept per record
    seeds, seed : int                      independent networks trained together, and the base seed
    record_ntk : bool                      compute the NTK eigenvalue (the costly part for many outputs)
    record_spectrum : bool                 compute the singular values (NaN when False; the costly part at large N)
    record_overlap : bool                  compute ``spike_overlap`` (one more SVD, with vectors)
    keep_matrices : bool                   return seed 0's W1(0)/sqrt(N) and final update
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or not (np.isfinite(X).all() and np.isfinite(Y).all()):
        fail("X, Y", "finite 2-d arrays with the same number of rows", (X.shape, Y.shape))
    N = check_int(width, "width", lo=2, hi=8192)
    param = check_choice(param, "param", ("mup", "ntp"))
    gamma0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False)
    n_steps = check_int(n_steps, "n_steps", lo=0, hi=10**6)
    top_k = check_int(top_k, "top_k", lo=1, hi=N)
    S = check_int(seeds, "seeds", lo=1, hi=1024)
    base_width = check_int(base_width, "base_width", lo=1)
    seed = check_int(seed, "seed", lo=0)
    rec = sorted({int(r) for r in (np.linspace(0, n_steps, 5) if record_steps is None else record_steps)})
    if rec and (rec[0] < 0 or rec[-1] > n_steps):
        fail("record_steps", f"steps in [0, n_steps={n_steps}]", rec)
    gamma = gamma0 if param == "mup" else gamma0 * math.sqrt(base_width / N)
    (P, D), C = X.shape, Y.shape[1]
    gen = torch.Generator().manual_seed(int(seed))
    dt = torch.float64
    W0 = torch.randn(S, N, D, generator=gen, dtype=dt)
    W1 = torch.randn(S, N, N, generator=gen, dtype=dt)
    W2 = torch.randn(S, C, N, generator=gen, dtype=dt)
    W1_init = W1.clone()
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    eta = lr * gamma**2 * N
    loss0 = torch.full((S,), math.inf, dtype=dt)
    bad = torch.zeros(S, dtype=torch.bool)
    sv, usv, ntk, loss, spectrum = [], [], [], [], None
    for t in range(n_steps + 1):
        h1, a1, h2, a2, f = _forward(Xt, W0, W1, W2, gamma, N, D)
        err = f - Yt                                             # (S, P, C)
        if t == 0 or t % 10 == 0 or t == n_steps:
            cur = 0.5 * (err**2).sum((1, 2)) / P
            loss0 = cur if t == 0 else loss0
            bad |= ~torch.isfinite(cur) | (cur > 1e6 * loss0)
        if t in rec:
            if record_spectrum:
                s_all = torch.linalg.svdvals(W1 / math.sqrt(N))
                sv.append(s_all[:, :top_k])
                usv.append(torch.linalg.svdvals((W1 - W1_init) / math.sqrt(N))[:, :top_k])
            else:
                sv.append(torch.full((S, top_k), math.nan, dtype=dt))
                usv.append(torch.full((S, top_k), math.nan, dtype=dt))
            loss.append(0.5 * (err**2).sum((1, 2)) / P)
            ntk.append(_ntk_top(Xt, W1, W2, a1, h1, a2, h2, N, D) if record_ntk else torch.full((S,), math.nan))
            spectrum = s_all if record_spectrum else None
        if t == n_steps:
            break
        # backprop of L = (1/2P) sum |f - y|^2
        dh2 = (err @ W2).mul_(1.0 / (gamma * N * P)).mul_(1.0 - a2**2)      # dL/dh2 (S, P, N)
        dh1 = (dh2 @ W1).mul_(1.0 / math.sqrt(N)).mul_(1.0 - a1**2)
        W2 = W2 - (eta / (gamma * N * P)) * (err.transpose(1, 2) @ a2)     # new tensors: W1_init stays intact
        W1 = torch.baddbmm(W1, dh2.transpose(1, 2), a1, alpha=-eta / math.sqrt(N))
        W0 = torch.baddbmm(W0, dh1.transpose(1, 2), Xt.expand(S, P, D), alpha=-eta / math.sqrt(D))
        if t % 10 == 9 and not torch.isfinite(W1).all():
            bad |= ~torch.isfinite(W1).flatten(1).all(1)
            break
    overlap = None
    if record_overlap:
        Uu, _, Vh = torch.linalg.svd((W1 - W1_init) / math.sqrt(N))
        Uu, Vh = Uu[:, :, :top_k], Vh[:, :top_k, :]
        overlap = torch.einsum("sni,snm,sim->si", Uu, W1_init / math.sqrt(N), Vh).numpy()
    pad = len(rec) - len(sv)
    stack = lambda xs, shape: np.concatenate([torch.stack(xs, 1).numpy() if xs else np.zeros((S, 0, *shape)),  # noqa: E731
                                              np.full((S, pad, *shape), np.nan)], 1)
    return SpectralRun(np.array(rec), stack(sv, (top_k,)), stack(usv, (top_k,)), stack(ntk, ()), stack(loss, ()), N,
                       param, gamma, lr, None if spectrum is None else spectrum.numpy(), overlap, bad.numpy(),
                       (W1_init[0] / math.sqrt(N)).numpy() if keep_matrices else None,
                       ((W1 - W1_init)[0] / math.sqrt(N)).numpy() if keep_matrices else None)
