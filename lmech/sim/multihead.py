"""Multi-head transformers in the parameterization of "Infinite Limits of Multi-head Transformer Dynamics".

The model (residual stream of width ``N H``: ``H`` heads of key/query dimension ``N``; ``L``
blocks; pre-LayerNorm without gain)::

    h^1 = W^0 x / sqrt(D)
    h~  = h + beta0 L^-alpha_L  MHSA(LN h),    h^{l+1} = h~ + beta0 L^-alpha_L  MLP(LN h~)
    MHSA(h)_s = (N H)^-1/2  W_O  concat_h  sum_s' softmax_s'(A_h)_{s s'} v_{h s'},   v = (N H)^-1/2 W_V h
    A_h,ss'  = N^-alpha_A  q_{h s} . k_{h s'},   q = N^(alpha_A - 3/2) H^-1/2 W_Q h  (same for k)
    f = (gamma0 N H)^-1  w . mean_s h^L

All weights start with unit-variance entries except ``W_Q`` and ``W_K``, whose entries have
standard deviation ``N^(1 - alpha_A)``, so ``q`` and ``k`` have order-one entries and the
logits at initialisation have variance of order ``N^(1 - 2 alpha_A)``. ``alpha_A = 1`` (logits
scaled by ``1 / N``, the muP choice) gives a well-defined limit ``N -> infinity`` in which
every head of a layer follows the same dynamics; ``alpha_A = 1/2`` (the usual
``1/sqrt(d_head)``) keeps random, distinct heads but has no limit. The branch scale
``L^-alpha_L`` with ``alpha_L = 1`` keeps in-block weights learning as ``L -> infinity``;
``alpha_L = 1/2`` freezes them (change of order ``L^-1/2``).

Learning rates follow the paper: SGD ``lr = eta0 gamma0^2 N H L^(2 alpha_L - 1)`` (the read-in
and readout get an extra ``L^(1 - 2 alpha_L)``, so their updates do not grow with depth).
``scaled=False`` drops the ``N H`` (and depth) factors: the control a transfer sweep compares
against.

The task is a synthetic sequence regression: tokens ``x_s ~ N(0, I_D)`` and the target of a
random single-head attention teacher reading out of the first token's query.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmech._validation import check_int, check_real, fail

__all__ = ["AttentionConfig", "MultiHeadNet", "teacher_task", "train_multihead", "MultiHeadRun", "lr_sweep"]


@dataclass(frozen=True)
class AttentionConfig:
    """Shape and parameterization: ``N`` key/query dimension per head, ``H`` heads, ``L``
    blocks, ``D`` token dimension, ``S`` sequence length, the exponents ``alpha_A``
    (logits ``N^-alpha_A``) and ``alpha_L`` (branches ``L^-alpha_L``), ``beta0`` the branch
    constant, ``gamma0`` the richness (readout ``1 / (gamma0 N H)``), ``mlp`` whether blocks
    have an MLP sub-layer."""

    N: int = 16
    H: int = 4
    L: int = 1
    D: int = 16
    S: int = 8
    alpha_A: float = 1.0
    alpha_L: float = 1.0
    beta0: float = 1.0
    gamma0: float = 1.0
    mlp: bool = True

    def __post_init__(self) -> None:
        for name in ("N", "H", "L", "D", "S"):
            check_int(getattr(self, name), name, lo=1)
        check_real(self.alpha_A, "alpha_A", lo=0.0, hi=2.0)
        check_real(self.alpha_L, "alpha_L", lo=0.0, hi=2.0)
        check_real(self.beta0, "beta0", lo=0.0, lo_closed=False)
        check_real(self.gamma0, "gamma0", lo=0.0, lo_closed=False)
        if self.N * self.H > 8192:
            fail("N * H", "a residual width of at most 8192", self.N * self.H)


def _ln(h: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(h, h.shape[-1:])


class MultiHeadNet(nn.Module):
    """The transformer above; ``forward(x)`` returns ``f`` of shape ``(batch,)`` and keeps the
    last call's attention logits (``self.logits``: one ``(batch, H, S, S)`` per block) and
    final residual stream (``self.stream``: ``(batch, S, N H)``)."""

    def __init__(self, cfg: AttentionConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        W = cfg.N * cfg.H
        g = generator

        def normal(*shape: int, std: float = 1.0) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=g, dtype=torch.float64) * std)

        qk_std = cfg.N ** (1.0 - cfg.alpha_A)
        self.w_in = normal(W, cfg.D)
        self.wq = nn.ParameterList([normal(W, W, std=qk_std) for _ in range(cfg.L)])
        self.wk = nn.ParameterList([normal(W, W, std=qk_std) for _ in range(cfg.L)])
        self.wv = nn.ParameterList([normal(W, W) for _ in range(cfg.L)])
        self.wo = nn.ParameterList([normal(W, W) for _ in range(cfg.L)])
        self.w1 = nn.ParameterList([normal(W, W) for _ in range(cfg.L if cfg.mlp else 0)])
        self.w2 = nn.ParameterList([normal(W, W) for _ in range(cfg.L if cfg.mlp else 0)])
        self.w_out = normal(W)
        self.logits: list[torch.Tensor] = []
        self.stream: torch.Tensor | None = None

    @property
    def branch(self) -> float:
        return self.cfg.beta0 * self.cfg.L ** (-self.cfg.alpha_L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        W = c.N * c.H
        B, S, _ = x.shape
        h = x @ self.w_in.T / math.sqrt(c.D)
        qk_mult = c.N ** (c.alpha_A - 1.5) / math.sqrt(c.H)
        self.logits = []
        for layer in range(c.L):
            hb = _ln(h)
            q = (hb @ self.wq[layer].T * qk_mult).view(B, S, c.H, c.N).transpose(1, 2)
            k = (hb @ self.wk[layer].T * qk_mult).view(B, S, c.H, c.N).transpose(1, 2)
            v = (hb @ self.wv[layer].T / math.sqrt(W)).view(B, S, c.H, c.N).transpose(1, 2)
            A = q @ k.transpose(-1, -2) * c.N ** (-c.alpha_A)
            self.logits.append(A)
            att = (torch.softmax(A, dim=-1) @ v).transpose(1, 2).reshape(B, S, W)
            h = h + self.branch * (att @ self.wo[layer].T / math.sqrt(W))
            if c.mlp:
                z = torch.relu(_ln(h) @ self.w1[layer].T / math.sqrt(W))
                h = h + self.branch * (z @ self.w2[layer].T / math.sqrt(W))
        self.stream = h
        return h.mean(dim=1) @ self.w_out / (c.gamma0 * W)


def teacher_task(P: int, S: int = 8, D: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``P`` sequences of ``S`` Gaussian tokens in ``R^D`` and targets of a random one-head
    attention teacher: ``y = sum_s softmax_s(x_0 . Q x_s / sqrt(D)) (u . x_s)``, scaled to unit variance."""
    P = check_int(P, "P", lo=1)
    S = check_int(S, "S", lo=1)
    D = check_int(D, "D", lo=1)
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(P, S, D, generator=g, dtype=torch.float64)
    Q = torch.randn(D, D, generator=g, dtype=torch.float64) * 2.0 / math.sqrt(D)
    u = torch.randn(D, generator=g, dtype=torch.float64)
    scores = torch.einsum("pd,de,pse->ps", X[:, 0], Q, X)
    y = (torch.softmax(scores, dim=-1) * (X @ u)).sum(dim=1)
    return X, (y - y.mean()) / y.std()


@dataclass
class MultiHeadRun:
    """One training run: losses per step, attention logits at the start and the end (one
    ``(P, H, S, S)`` array per block), relative change of each block's key/query weights,
    the final residual-stream kernel ``(P, P)`` (mean over tokens, divided by ``N H``)."""

    config: AttentionConfig
    lr: float
    loss: np.ndarray
    logits_init: list[np.ndarray]
    logits_final: list[np.ndarray]
    qk_change: np.ndarray
    kernel: np.ndarray
    diverged: bool
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        return float(self.loss[-1]) if not self.diverged else math.inf


def _lr(cfg: AttentionConfig, eta0: float, scaled: bool) -> tuple[float, float]:
    """(hidden lr, read-in/readout lr) for SGD on the mean-squared error."""
    if not scaled:
        return eta0, eta0
    base = eta0 * cfg.gamma0 ** 2 * cfg.N * cfg.H
    return base * cfg.L ** (2 * cfg.alpha_L - 1), base


def train_multihead(cfg: AttentionConfig, X: torch.Tensor, y: torch.Tensor, *, eta0: float, steps: int,
                    seed: int = 0, scaled: bool = True) -> MultiHeadRun:
    """Full-batch SGD on ``0.5 mean (f - y)^2`` with the paper's learning-rate scaling
    (``scaled=False``: one learning rate ``eta0`` for every shape, the control)."""
    if not isinstance(cfg, AttentionConfig):
        fail("cfg", "an AttentionConfig", type(cfg).__name__, TypeError)
    eta0 = check_real(eta0, "eta0", lo=0.0, lo_closed=False)
    steps = check_int(steps, "steps", lo=1)
    if X.ndim != 3 or X.shape[1:] != (cfg.S, cfg.D) or y.shape != X.shape[:1]:
        fail("X", f"a (P, {cfg.S}, {cfg.D}) tensor with y of shape (P,)", tuple(X.shape))
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    net = MultiHeadNet(cfg, g)
    lr_h, lr_io = _lr(cfg, eta0, scaled)
    io = [net.w_in, net.w_out]
    hidden = [p for p in net.parameters() if all(p is not q for q in io)]
    opt = torch.optim.SGD([{"params": hidden, "lr": lr_h}, {"params": io, "lr": lr_io}])
    qk0 = [w.detach().clone() for w in (*net.wq, *net.wk)]
    losses = []
    logits0: list[np.ndarray] = []
    diverged = False
    for t in range(steps):
        out = net(X)
        if t == 0:
            logits0 = [a.detach().numpy().copy() for a in net.logits]
        loss = 0.5 * ((out - y) ** 2).mean()
        lv = float(loss.detach())
        losses.append(lv)
        if not math.isfinite(lv) or lv > 1e6:
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = net(X)
        final = [a.numpy().copy() for a in net.logits]
        stream = net.stream.mean(dim=1)
        kernel = (stream @ stream.T / (cfg.N * cfg.H)).numpy()
        qk = [float((w - w0).norm() / w0.norm()) for w, w0 in zip((*net.wq, *net.wk), qk0)]
        losses.append(float(0.5 * ((out - y) ** 2).mean()))
    diverged = diverged or not math.isfinite(losses[-1])
    return MultiHeadRun(config=cfg, lr=lr_h, loss=np.array(losses), logits_init=logits0, logits_final=final,
                        qk_change=np.array(qk), kernel=kernel, diverged=diverged, seconds=time.perf_counter() - t0,
                        meta={"eta0": eta0, "steps": steps, "seed": seed, "scaled": scaled})


def lr_sweep(cfg: AttentionConfig, X: torch.Tensor, y: torch.Tensor, *, axis: str, sizes: Sequence[int],
             log10_eta: Sequence[float], steps: int, seeds: Sequence[int], scaled: bool = True) -> np.ndarray:
    """Final training loss for each size along ``axis`` (``"H"``, ``"N"`` or ``"L"``), each
    ``eta0 = 10^x`` and seed: an array ``(len(sizes), len(log10_eta), len(seeds))`` (inf where
    training diverged)."""
    if axis not in ("H", "N", "L"):
        fail("axis", "one of 'H', 'N', 'L'", axis)
    out = np.empty((len(sizes), len(log10_eta), len(seeds)))
    for i, size in enumerate(sizes):
        c = replace(cfg, **{axis: int(size)})
        for j, x in enumerate(log10_eta):
            for k, s in enumerate(seeds):
                out[i, j, k] = train_multihead(c, X, y, eta0=10.0 ** x, steps=steps, seed=s, scaled=scaled).final_loss
    return out
