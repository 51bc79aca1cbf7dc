"""Finite-width networks in the mean-field / muP parameterization with richness ``gamma0``.

This is the real system that the DMFT solvers of :mod:`lmech.theory.dmft` describe
("Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks",
Bordelon & Pehlevan; "Dynamics of Finite Width Kernel and Prediction Fluctuations in Mean
Field Neural Networks"). Network of width ``N`` with ``L`` hidden layers::

    h^1 = W^0 x / sqrt(D),   h^{l+1} = W^l phi(h^l) / sqrt(N),   f = w . phi(h^L) / (gamma0 N)

with every entry of ``W^l`` and ``w`` drawn i.i.d. N(0, 1). Loss
``(1/2P) sum_mu (y_mu - f_mu)^2``; full-batch gradient descent on every parameter with the
same raw step ``theta <- theta - lr * gamma0^2 * N * dLoss/dtheta``. With this choice the
function-space step is O(1) in ``N`` and ``gamma0`` (``f(t+1) - f(t) = (lr/P) K(t) Delta(t)
+ O(lr^2)``), hidden pre-activations move by O(lr * gamma0) per step at any width (feature
learning survives N -> infinity), and ``gamma0 -> 0`` is the lazy / NTK limit.

Everything is batched over seeds: the weights of all seeds live in one tensor with a leading
seed axis, and one step of training is a handful of batched matrix products. Gradients are
computed by an explicit backward pass (the same one the DMFT's backward fields describe):
``g^L = phi'(h^L) * w`` and ``g^l = phi'(h^l) * (W^l)^T g^{l+1} / sqrt(N)``.

Tracked quantities at the recorded steps, on the training points followed by the test points
(``M = P + P'`` points):

* ``Phi^l = phi(h^l) phi(h^l)^T / N`` (feature kernels, ``l = 1..L``),
* ``G^l = g^l g^l^T / N`` (gradient kernels, ``l = 1..L``),
* the neural tangent kernel in O(1) units, ``K = gamma0^2 N J J^T``, which equals
  ``Phi^L + sum_{l=1}^{L} G^l * Phi^{l-1}`` with ``Phi^0 = X X^T / D`` (elementwise products).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmech._validation import (
    MAX_MAGNITUDE,
    MAX_SIZE,
    check_array, check_choice, check_int, check_real, check_regression_data, check_seeds, fail,
)
from lmech.nonlinearities import NONLINEARITIES

__all__ = ["MeanFieldRun", "train_mean_field", "sphere_regression_task", "ensemble_loss", "ACTIVATIONS"]


#: name -> (phi, phi') (from the shared table :data:`lmech.nonlinearities.NONLINEARITIES`)
ACTIVATIONS = {name: (nl.phi, nl.dphi) for name, nl in NONLINEARITIES.items()}


@dataclass(frozen=True)
class MeanFieldRun:
    """Trajectories of an ensemble of mean-field networks (one per seed).

    Shapes use ``S`` = number of seeds, ``T`` = number of recorded steps, ``P`` training
    points, ``P'`` test points, ``M = P + P'`` and ``L`` hidden layers. Kernels are on the
    training points followed by the test points.

    Attributes
    ----------
    steps : ndarray, shape (T,)
        Recorded GD step indices (0 = initialisation; the last step is always recorded).
    times : ndarray, shape (T,)
        ``lr * steps``, the time in units where the function-space step is ``lr``.
    train_loss, test_loss : ndarray, shape (S, T)
        ``(1/2P) sum_mu (y_mu - f_mu)^2`` on the training set, and the same with ``P'`` on
        the test set (``test_loss`` is None without a test set).
    f_train, f_test : ndarray, shapes (S, T, P) and (S, T, P')
        Network outputs (``f - f(0)`` when ``center=True``).
    feature_kernels, gradient_kernels : ndarray, shape (S, T, L, M, M) or None
        ``Phi^l`` and ``G^l`` for ``l = 1..L`` (index ``l - 1``); None unless tracked.
    ntk : ndarray, shape (S, T, M, M) or None
        Neural tangent kernel ``gamma0^2 N J J^T``.
    input_kernel : ndarray, shape (M, M)
        ``Phi^0 = X X^T / D`` on train + test inputs.
    """

    steps: np.ndarray
    times: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    f_train: np.ndarray
    f_test: np.ndarray | None
    feature_kernels: np.ndarray | None
    gradient_kernels: np.ndarray | None
    ntk: np.ndarray | None
    input_kernel: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray | None
    seeds: tuple[int, ...]
    width: int
    depth: int
    gamma0: float
    lr: float
    activation: str
    center: bool

    @property
    def residual(self) -> np.ndarray:
        """Training residuals ``Delta = y - f``, shape (S, T, P)."""
        return self.y_train - self.f_train

    def ensemble_mean(self, name: str) -> np.ndarray:
        """Mean over seeds of the attribute ``name`` (e.g. ``"train_loss"``)."""
        value = getattr(self, name)
        if value is None:
            fail("name", "an attribute that was recorded", name)
        return np.asarray(value).mean(axis=0)


def train_mean_field(
    X,
    y,
    *,
    width: int,
    depth: int = 1,
    gamma0: float,
    lr: float,
    steps: int,
    activation: str = "tanh",
    X_test=None,
    y_test=None,
    seeds: Sequence[int] | int = (0,),
    record_every: int = 1,
    track_kernels: bool = True,
    center: bool = False,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> MeanFieldRun:
    """Train an ensemble of mean-field networks by full-batch gradient descent.

    Parameters
    ----------
    X : array, shape (P, D)
        Training inputs (the input kernel is ``X X^T / D``).
    y : array, shape (P,)
        Training targets.
    width : int
        Hidden width ``N``.
    depth : int
        Number of hidden layers ``L`` (1 = two-layer network).
    gamma0 : float
        Richness (> 0). Small ``gamma0`` is the lazy regime; ``gamma0 = O(1)`` is rich.
    lr : float
        Function-space learning rate ``eta``; every parameter takes the raw step
        ``eta * gamma0^2 * N * grad``.
    steps : int
        Number of GD steps (``steps + 1`` states, step 0 is the initialisation).
    activation : {"tanh", "relu", "linear", "erf"}
    X_test, y_test : arrays, shapes (P', D) and (P',), optional
        Held-out points: predictions and kernels are tracked, they never enter the loss.
    seeds : sequence of int
        One network per seed; seed ``s`` draws its weights from ``torch.Generator``
        seeded with ``s`` (the same seed gives the same network in any batch).
    record_every : int
        Record every ``record_every`` steps (and always the last step).
    track_kernels : bool
        Record ``Phi^l``, ``G^l`` and the NTK (cheap: O(S M^2 N L) per recorded step).
    center : bool
        Train the centred model ``f(x; theta) - f(x; theta_0)`` (removes the
        O(1/(gamma0 sqrt N)) initial output; kernels and feature learning are unchanged).
    dtype, device :
        Torch dtype (float64 by default) and device of the computation.
    progress : bool
        Show a tqdm progress bar over steps.

    Returns
    -------
    MeanFieldRun

    Notes
    -----
    Cost per step: O(S N^2 M (L - 1) + S N M D) time; memory O(S (N^2 (L - 1) + N D)) for the
    weights (8 seeds of a depth-3 network at N = 4096 hold ~2.1 GB in float64).
    """
    Xa, ya, Xt, yt = check_regression_data(X, y, X_test, y_test, test_labels_required=True)
    N = check_int(width, "width", lo=1)
    L = check_int(depth, "depth", lo=1)
    g0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    n_steps = check_int(steps, "steps", lo=0)
    check_choice(activation, "activation", ACTIVATIONS)
    every = check_int(record_every, "record_every", lo=1)
    seed_list = check_seeds(seeds)
    if dtype not in (torch.float64, torch.float32):
        fail("dtype", "torch.float64 or torch.float32", dtype, TypeError)
    dev = torch.device("cpu" if device is None else device)
    phi, dphi = ACTIVATIONS[activation]

    P, D = Xa.shape
    X_all = Xa if Xt is None else np.concatenate([Xa, Xt], axis=0)
    M = X_all.shape[0]
    Xall = torch.as_tensor(X_all, dtype=dtype, device=dev)
    Xtr = Xall[:P]
    ytr = torch.as_tensor(ya, dtype=dtype, device=dev)
    Kx = Xall @ Xall.T / D
    S = len(seed_list)

    # weights, one slice per seed, each seed with its own generator
    W0 = torch.empty(S, N, D, dtype=dtype, device=dev)
    Ws = [torch.empty(S, N, N, dtype=dtype, device=dev) for _ in range(L - 1)]
    w = torch.empty(S, N, dtype=dtype, device=dev)
    for i, s in enumerate(seed_list):
        gen = torch.Generator().manual_seed(s)
        W0[i] = torch.randn(N, D, generator=gen, dtype=torch.float64).to(dtype)
        for W in Ws:
            W[i] = torch.randn(N, N, generator=gen, dtype=torch.float64).to(dtype)
        w[i] = torch.randn(N, generator=gen, dtype=torch.float64).to(dtype)

    sqN, sqD = math.sqrt(N), math.sqrt(D)
    coef = eta * g0 / P  # every parameter moves by coef * (sum_mu Delta_mu * d f_mu / d theta) * gamma0 N

    def forward():
        hs = [torch.matmul(Xall, W0.transpose(1, 2)) / sqD]  # (S, M, N)
        for W in Ws:
            hs.append(torch.bmm(phi(hs[-1]), W.transpose(1, 2)) / sqN)
        acts = [phi(h) for h in hs]
        f = torch.einsum("smn,sn->sm", acts[-1], w) / (g0 * N)
        return hs, acts, f

    def backward(hs):
        gs = [None] * L
        gs[L - 1] = dphi(hs[L - 1]) * w[:, None, :]
        for l in range(L - 2, -1, -1):
            gs[l] = dphi(hs[l]) * torch.bmm(gs[l + 1], Ws[l]) / sqN
        return gs

    rec_steps = list(range(0, n_steps + 1, every))
    if rec_steps[-1] != n_steps:
        rec_steps.append(n_steps)
    rec_set = set(rec_steps)
    T = len(rec_steps)
    f_rec = torch.empty(S, T, M, dtype=torch.float64)
    if track_kernels:
        Phi_rec = torch.empty(S, T, L, M, M, dtype=torch.float64)
        G_rec = torch.empty(S, T, L, M, M, dtype=torch.float64)
        K_rec = torch.empty(S, T, M, M, dtype=torch.float64)

    iterator = range(n_steps + 1)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"mean-field N={N} L={L}", leave=False)
    f0 = None
    k = 0
    with torch.no_grad():
        for t in iterator:
            hs, acts, f = forward()
            if center:
                if f0 is None:
                    f0 = f.clone()
                f = f - f0
            need_grad = t < n_steps
            record = t in rec_set
            gs = backward(hs) if (need_grad or (record and track_kernels)) else None
            if record:
                f_rec[:, k] = f.to(torch.float64).cpu()
                if track_kernels:
                    prev = Kx.expand(S, M, M)
                    ntk = torch.zeros(S, M, M, dtype=dtype, device=dev)
                    for l in range(L):
                        Phi_l = torch.bmm(acts[l], acts[l].transpose(1, 2)) / N
                        G_l = torch.bmm(gs[l], gs[l].transpose(1, 2)) / N
                        Phi_rec[:, k, l] = Phi_l.to(torch.float64).cpu()
                        G_rec[:, k, l] = G_l.to(torch.float64).cpu()
                        ntk += G_l * prev
                        prev = Phi_l
                    ntk += prev
                    K_rec[:, k] = ntk.to(torch.float64).cpu()
                k += 1
            if not need_grad:
                break
            delta = ytr - f[:, :P]  # (S, P)
            # all gradients from the current weights, then one simultaneous update
            upd_w = coef * torch.einsum("sp,spn->sn", delta, acts[-1][:, :P])
            upd_W = []
            for l, W in enumerate(Ws):  # W = W^{l+1} maps layer l+1 -> l+2 (0-based: acts[l] -> hs[l+1])
                left = (gs[l + 1][:, :P] * delta[:, :, None]).transpose(1, 2)  # (S, N, P)
                upd_W.append(torch.bmm(left, acts[l][:, :P]) * (coef / sqN))
            upd_W0 = torch.matmul((gs[0][:, :P] * delta[:, :, None]).transpose(1, 2), Xtr) * (coef / sqD)
            w += upd_w
            W0 += upd_W0
            for W, dW in zip(Ws, upd_W):
                W += dW
            del upd_W

    f_np = f_rec.numpy()
    y_tr = ya.copy()
    f_train = f_np[:, :, :P]
    train_loss = 0.5 * np.mean((y_tr - f_train) ** 2, axis=-1)
    if Xt is not None:
        f_test = f_np[:, :, P:]
        test_loss = 0.5 * np.mean((yt - f_test) ** 2, axis=-1)
    else:
        f_test = test_loss = None
    steps_arr = np.asarray(rec_steps, dtype=np.int64)
    return MeanFieldRun(
        steps=steps_arr,
        times=eta * steps_arr.astype(np.float64),
        train_loss=train_loss,
        test_loss=test_loss,
        f_train=f_train,
        f_test=f_test,
        feature_kernels=Phi_rec.numpy() if track_kernels else None,
        gradient_kernels=G_rec.numpy() if track_kernels else None,
        ntk=K_rec.numpy() if track_kernels else None,
        input_kernel=(X_all @ X_all.T) / D,
        y_train=y_tr,
        y_test=None if yt is None else yt.copy(),
        seeds=seed_list,
        width=N,
        depth=L,
        gamma0=g0,
        lr=eta,
        activation=activation,
        center=bool(center),
    )


def sphere_regression_task(P: int, P_test: int, D: int, seed: int = 1):
    """A small nonlinear regression task for mean-field networks and their DMFT.

    Inputs are drawn uniformly on the sphere of radius ``sqrt(D)`` (so ``x.x / D = 1``); the
    target is ``tanh(b.x / sqrt(D)) + 0.5 x_1 x_2`` with ``b ~ N(0, I_D)``, standardised with
    the mean and standard deviation of the training targets (the test targets use the same
    shift and scale). ``seed`` fixes inputs and ``b``.

    Returns
    -------
    X, y, X_test, y_test : arrays of shapes (P, D), (P,), (P_test, D), (P_test,)
    """
    P = check_int(P, "P", lo=2, hi=MAX_SIZE)
    P_test = check_int(P_test, "P_test", lo=0, hi=MAX_SIZE)
    D = check_int(D, "D", lo=2, hi=MAX_SIZE)
    rng = np.random.default_rng(check_int(seed, "seed", lo=0))
    X = rng.standard_normal((P + P_test, D))
    X *= math.sqrt(D) / np.linalg.norm(X, axis=1, keepdims=True)
    b = rng.standard_normal(D)
    y = np.tanh(X @ b / math.sqrt(D)) + 0.5 * X[:, 0] * X[:, 1]
    y = (y - y[:P].mean()) / y[:P].std()
    return X[:P], y[:P], X[P:], y[P:]


def ensemble_loss(f, y, ensemble_size: int) -> tuple[float, float]:
    """Loss of the average of ``ensemble_size`` independently initialised networks.

    The ``S`` networks' predictions are split into ``S / ensemble_size`` disjoint consecutive
    groups; each group's averaged prediction ``f_bar`` has loss ``(1/2P) sum_mu (y_mu - f_bar_mu)^2``.

    Parameters
    ----------
    f : array, shape (S, P)
        Predictions of ``S`` networks on ``P`` points (``S`` a multiple of ``ensemble_size``).
    y : array, shape (P,)
        Targets.
    ensemble_size : int
        Networks per ensemble (>= 1).

    Returns
    -------
    (mean, standard error) of the loss over the groups (standard error 0 for a single group).
    """
    fa = check_array(f, "f", max_abs=MAX_MAGNITUDE, ndim=2, min_size=1)
    ya = check_array(y, "y", max_abs=MAX_MAGNITUDE, ndim=1)
    if ya.shape[0] != fa.shape[1]:
        fail("y", f"of length {fa.shape[1]} (columns of f)", ya)
    E = check_int(ensemble_size, "ensemble_size", lo=1)
    if fa.shape[0] % E:
        fail("ensemble_size", f"a divisor of the number of networks {fa.shape[0]}", E)
    losses = 0.5 * np.mean((ya - fa.reshape(-1, E, ya.size).mean(1)) ** 2, axis=1)
    se = losses.std(ddof=1) / math.sqrt(losses.size) if losses.size > 1 else 0.0
    return float(losses.mean()), float(se)
