"""Finite-width mean-field networks trained with biologically plausible learning rules.

The network, its parameterization and the data conventions are those of
:mod:`lmech.sim.mean_field` ("The Influence of Learning Rule on Representation Dynamics in
Wide Neural Networks", Bordelon & Pehlevan)::

    h^1 = W^0 x / sqrt(D),   h^{l+1} = W^l phi(h^l) / sqrt(N),   f = w . phi(h^L) / (gamma0 N),

all weights i.i.d. N(0, 1), loss ``(1/2P) sum_mu (y_mu - f_mu)^2``. A learning rule replaces
the back-propagated signal ``g^l`` in the weight update by a pseudo-gradient ``gt^l``::

    W^0 += (lr gamma0 / P) sum_mu Delta_mu gt^1_mu x_mu^T / sqrt(D)
    W^l += (lr gamma0 / (P sqrt N)) sum_mu Delta_mu gt^{l+1}_mu phi(h^l_mu)^T
    w   += (lr gamma0 / P) sum_mu Delta_mu phi(h^L_mu)                   (readout: always exact)

with ``Delta = y - f`` on the training points and

* ``"gd"``   ``gt^l = g^l``: back-propagation, ``g^L = phi'(h^L) w``, ``g^l = phi'(h^l) (W^l)^T g^{l+1} / sqrt N``;
* ``"fa"``   feedback alignment: ``gt^L = phi'(h^L) wt``, ``gt^l = phi'(h^l) (Bt^l)^T gt^{l+1} / sqrt N`` with
  frozen feedback ``wt = rho w(0) + sqrt(1-rho^2) xi``, ``Bt^l = rho W^l(0) + sqrt(1-rho^2) Xi^l``;
* ``"dfa"``  direct feedback alignment: ``gt^l = phi'(h^l) bt^l``, one frozen random N-vector per layer;
* ``"hebb"`` error-modulated Hebbian: ``gt^l = phi(h^l)`` (post-synaptic activity);
* ``"gln"``  gated linear network trained by GD: ``phi^l(h) = s^l(x) h`` with frozen input gates
  ``s^l_i(x) = 1[v^l_i . x > 0]``, ``v^l_i ~ N(0, I_D)`` (``activation`` is ignored).

Recorded kernels (O(1) units, train points then test points): ``Phi^l = phi(h^l) phi(h^l)^T/N``,
the true gradient kernel ``G^l = g^l g^l^T / N``, the cross kernel ``Gx^l = g^l gt^l^T / N`` and the
*effective* NTK ``K_eff = Phi^L + sum_l Gx^l * Phi^{l-1}`` (``Phi^0 = X X^T/D``), which gives the
function-space step ``f(t+1) - f(t) = (lr/P) K_eff[:, train] Delta + O(lr^2)``. ``K_eff`` is not
symmetric for FA, DFA and Hebb (row: output point, column: the point whose error drives the
update).

Random draws: seed ``s`` seeds one ``torch.Generator`` that draws ``W^0, W^1, ..., W^{L-1}, w``
in that order (the draws of :func:`lmech.sim.mean_field.train_mean_field`, so ``rule="gd"``
reproduces it exactly), then the rule's frozen feedback (FA: ``Xi^1..Xi^{L-1}, xi``; DFA:
``bt^1..bt^L``; GLN: ``v^1..v^L``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmech._validation import (
    check_choice, check_int, check_real, check_regression_data, check_seeds, fail,
)
from lmech.sim.mean_field import ACTIVATIONS

__all__ = ["RULES", "RuleRun", "train_learning_rule"]

RULES = ("gd", "fa", "dfa", "hebb", "gln")


@dataclass(frozen=True)
class RuleRun:
    """Trajectories of an ensemble of networks trained with one learning rule.

    Shapes: ``S`` seeds, ``T`` recorded steps, ``P`` train / ``P'`` test points, ``M = P + P'``,
    ``L`` hidden layers.

    Attributes
    ----------
    steps, times : ndarray, shape (T,)
        Recorded step indices and ``lr * steps``.
    train_loss, test_loss : ndarray, shape (S, T)
        ``(1/2P) sum (y - f)^2`` (test: None without ``y_test``).
    f_train, f_test : ndarray, shapes (S, T, P), (S, T, P')
    feature_kernels, gradient_kernels, cross_kernels : ndarray, shape (S, T, L, M, M) or None
        ``Phi^l``, ``G^l = g g^T/N`` and ``Gx^l = g gt^T/N`` (index ``l - 1``).
    effective_ntk, ntk : ndarray, shape (S, T, M, M) or None
        ``K_eff = Phi^L + sum_l Gx^l * Phi^{l-1}`` and the true NTK (``Gx -> G``).
    """

    steps: np.ndarray
    times: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    f_train: np.ndarray
    f_test: np.ndarray | None
    feature_kernels: np.ndarray | None
    gradient_kernels: np.ndarray | None
    cross_kernels: np.ndarray | None
    effective_ntk: np.ndarray | None
    ntk: np.ndarray | None
    input_kernel: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray | None
    seeds: tuple[int, ...]
    rule: str
    rho: float
    width: int
    depth: int
    gamma0: float
    lr: float
    activation: str

    @property
    def residual(self) -> np.ndarray:
        """Training residuals ``y - f``, shape (S, T, P)."""
        return self.y_train - self.f_train


def train_learning_rule(
    X,
    y,
    *,
    rule: str,
    width: int,
    depth: int = 1,
    gamma0: float,
    lr: float,
    steps: int,
    activation: str = "tanh",
    rho: float = 0.0,
    X_test=None,
    y_test=None,
    seeds: Sequence[int] | int = (0,),
    record_every: int = 1,
    track_kernels: bool = True,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> RuleRun:
    """Train an ensemble (one network per seed) with a learning rule; see the module docstring.

    Parameters
    ----------
    X, y : arrays, shapes (P, D), (P,)
        Training data.
    rule : {"gd", "fa", "dfa", "hebb", "gln"}
    width : int
        Hidden width ``N``.
    depth : int
        Hidden layers ``L`` (1 = two-layer network).
    gamma0 : float
        Richness (> 0).
    lr : float
        Function-space learning rate (raw step ``lr gamma0^2 N`` times the (pseudo-)gradient).
    steps : int
        GD steps.
    activation : {"tanh", "relu", "linear", "erf"}
        Ignored for ``rule="gln"`` (gated identity).
    rho : float in [-1, 1]
        FA only: correlation of the frozen feedback weights with the initial forward weights.
    X_test, y_test : optional held-out points (tracked, never trained on).
    seeds : sequence of int
    record_every : int
    track_kernels : bool
    dtype, device, progress :
        As in :func:`lmech.sim.mean_field.train_mean_field`.

    Returns
    -------
    RuleRun

    Notes
    -----
    Cost per step O(S (L - 1) N^2 M + S N M D); memory O(S L N^2) (twice that for FA).
    """
    Xa, ya, Xt, yt = check_regression_data(X, y, X_test, y_test)
    check_choice(rule, "rule", RULES)
    N = check_int(width, "width", lo=1)
    L = check_int(depth, "depth", lo=1)
    g0 = check_real(gamma0, "gamma0", lo=0.0, lo_closed=False)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    n_steps = check_int(steps, "steps", lo=0)
    if rule != "gln":
        check_choice(activation, "activation", ACTIVATIONS)
    rho_v = check_real(rho, "rho", lo=-1.0, hi=1.0)
    every = check_int(record_every, "record_every", lo=1)
    seed_list = check_seeds(seeds)
    if dtype not in (torch.float64, torch.float32):
        fail("dtype", "torch.float64 or torch.float32", dtype, TypeError)
    dev = torch.device("cpu" if device is None else device)

    P, D = Xa.shape
    X_all = Xa if Xt is None else np.concatenate([Xa, Xt], axis=0)
    M = X_all.shape[0]
    Xall = torch.as_tensor(X_all, dtype=dtype, device=dev)
    Xtr = Xall[:P]
    ytr = torch.as_tensor(ya, dtype=dtype, device=dev)
    Kx = Xall @ Xall.T / D
    S = len(seed_list)

    def draw(shape_list):
        return [torch.empty(S, *shp, dtype=dtype, device=dev) for shp in shape_list]

    W0 = torch.empty(S, N, D, dtype=dtype, device=dev)
    Ws = draw([(N, N)] * (L - 1))
    w = torch.empty(S, N, dtype=dtype, device=dev)
    fb = []  # frozen feedback tensors of the rule
    if rule == "fa":
        fb = draw([(N, N)] * (L - 1) + [(N,)])
    elif rule == "dfa":
        fb = draw([(N,)] * L)
    elif rule == "gln":
        fb = draw([(N, D)] * L)
    for i, s in enumerate(seed_list):
        gen = torch.Generator().manual_seed(s)
        W0[i] = torch.randn(N, D, generator=gen, dtype=torch.float64).to(dtype)
        for W in Ws:
            W[i] = torch.randn(N, N, generator=gen, dtype=torch.float64).to(dtype)
        w[i] = torch.randn(N, generator=gen, dtype=torch.float64).to(dtype)
        for B in fb:
            B[i] = torch.randn(*B.shape[1:], generator=gen, dtype=torch.float64).to(dtype)
    if rule == "fa":  # Bt^l = rho W^l(0) + sqrt(1 - rho^2) Xi^l ; wt = rho w(0) + sqrt(1 - rho^2) xi
        c = math.sqrt(max(0.0, 1.0 - rho_v * rho_v))
        fb = [rho_v * W + c * Xi for W, Xi in zip(Ws, fb[:-1])] + [rho_v * w + c * fb[-1]]
    gates = None
    if rule == "gln":  # s^l(x) for every point, fixed: (S, M, N) per layer
        gates = [(torch.matmul(Xall, V.transpose(1, 2)) > 0).to(dtype) for V in fb]
        phi = dphi = None
    else:
        phi, dphi = ACTIVATIONS[activation]

    sqN, sqD = math.sqrt(N), math.sqrt(D)
    coef = eta * g0 / P

    def act(l, h):
        return gates[l] * h if gates is not None else phi(h)

    def dact(l, h):
        return gates[l] if gates is not None else dphi(h)

    def forward():
        hs = [torch.matmul(Xall, W0.transpose(1, 2)) / sqD]
        acts = [act(0, hs[0])]
        for l, W in enumerate(Ws):
            hs.append(torch.bmm(acts[-1], W.transpose(1, 2)) / sqN)
            acts.append(act(l + 1, hs[-1]))
        f = torch.einsum("smn,sn->sm", acts[-1], w) / (g0 * N)
        return hs, acts, f

    def backward_true(hs):
        gs = [None] * L
        gs[L - 1] = dact(L - 1, hs[L - 1]) * w[:, None, :]
        for l in range(L - 2, -1, -1):
            gs[l] = dact(l, hs[l]) * torch.bmm(gs[l + 1], Ws[l]) / sqN
        return gs

    def pseudo(hs, acts, gs):
        if rule in ("gd", "gln"):
            return gs
        if rule == "hebb":
            return acts
        gt = [None] * L
        if rule == "dfa":
            for l in range(L):
                gt[l] = dact(l, hs[l]) * fb[l][:, None, :]
            return gt
        gt[L - 1] = dact(L - 1, hs[L - 1]) * fb[-1][:, None, :]  # fa
        for l in range(L - 2, -1, -1):
            gt[l] = dact(l, hs[l]) * torch.bmm(gt[l + 1], fb[l]) / sqN
        return gt

    rec_steps = list(range(0, n_steps + 1, every))
    if rec_steps[-1] != n_steps:
        rec_steps.append(n_steps)
    rec_set = set(rec_steps)
    T = len(rec_steps)
    f_rec = torch.empty(S, T, M, dtype=torch.float64)
    if track_kernels:
        Phi_rec = torch.empty(S, T, L, M, M, dtype=torch.float64)
        G_rec = torch.empty(S, T, L, M, M, dtype=torch.float64)
        Gx_rec = torch.empty(S, T, L, M, M, dtype=torch.float64)
        Keff_rec = torch.empty(S, T, M, M, dtype=torch.float64)
        K_rec = torch.empty(S, T, M, M, dtype=torch.float64)

    iterator = range(n_steps + 1)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc=f"{rule} N={N} L={L}", leave=False)
    k = 0
    with torch.no_grad():
        for t in iterator:
            hs, acts, f = forward()
            need_grad = t < n_steps
            record = t in rec_set
            gs = backward_true(hs) if (rule in ("gd", "gln") and need_grad) or (record and track_kernels) else None
            gt = pseudo(hs, acts, gs) if need_grad or (record and track_kernels) else None
            if record:
                f_rec[:, k] = f.to(torch.float64).cpu()
                if track_kernels:
                    prev = Kx.expand(S, M, M)
                    keff = torch.zeros(S, M, M, dtype=dtype, device=dev)
                    ntk = torch.zeros(S, M, M, dtype=dtype, device=dev)
                    for l in range(L):
                        Phi_l = torch.bmm(acts[l], acts[l].transpose(1, 2)) / N
                        G_l = torch.bmm(gs[l], gs[l].transpose(1, 2)) / N
                        Gx_l = torch.bmm(gs[l], gt[l].transpose(1, 2)) / N
                        Phi_rec[:, k, l] = Phi_l.to(torch.float64).cpu()
                        G_rec[:, k, l] = G_l.to(torch.float64).cpu()
                        Gx_rec[:, k, l] = Gx_l.to(torch.float64).cpu()
                        keff += Gx_l * prev
                        ntk += G_l * prev
                        prev = Phi_l
                    Keff_rec[:, k] = (keff + prev).to(torch.float64).cpu()
                    K_rec[:, k] = (ntk + prev).to(torch.float64).cpu()
                k += 1
            if not need_grad:
                break
            delta = ytr - f[:, :P]
            upd_w = coef * torch.einsum("sp,spn->sn", delta, acts[-1][:, :P])
            upd_W = []
            for l in range(L - 1):
                left = (gt[l + 1][:, :P] * delta[:, :, None]).transpose(1, 2)
                upd_W.append(torch.bmm(left, acts[l][:, :P]) * (coef / sqN))
            upd_W0 = torch.matmul((gt[0][:, :P] * delta[:, :, None]).transpose(1, 2), Xtr) * (coef / sqD)
            w += upd_w
            W0 += upd_W0
            for W, dW in zip(Ws, upd_W):
                W += dW
            del upd_W

    f_np = f_rec.numpy()
    f_train = f_np[:, :, :P]
    train_loss = 0.5 * np.mean((ya - f_train) ** 2, axis=-1)
    f_test = f_np[:, :, P:] if Xt is not None else None
    test_loss = 0.5 * np.mean((yt - f_test) ** 2, axis=-1) if yt is not None else None
    steps_arr = np.asarray(rec_steps, dtype=np.int64)
    return RuleRun(
        steps=steps_arr,
        times=eta * steps_arr.astype(np.float64),
        train_loss=train_loss,
        test_loss=test_loss,
        f_train=f_train,
        f_test=f_test,
        feature_kernels=Phi_rec.numpy() if track_kernels else None,
        gradient_kernels=G_rec.numpy() if track_kernels else None,
        cross_kernels=Gx_rec.numpy() if track_kernels else None,
        effective_ntk=Keff_rec.numpy() if track_kernels else None,
        ntk=K_rec.numpy() if track_kernels else None,
        input_kernel=(X_all @ X_all.T) / D,
        y_train=ya.copy(),
        y_test=None if yt is None else yt.copy(),
        seeds=seed_list,
        rule=rule,
        rho=rho_v,
        width=N,
        depth=L,
        gamma0=g0,
        lr=eta,
        activation="gated-linear" if rule == "gln" else activation,
    )
