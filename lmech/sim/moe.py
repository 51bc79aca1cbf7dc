"""Measurements on mixture-of-experts GPTs: initial residual-stream statistics, coordinate
checks over the expert count and the expert width, and learning-rate sweeps.

The model is :class:`lmech.models.GPT` with every MLP replaced by
:class:`lmech.models.moe.MoEFeedForward`, parameterized by :class:`lmech.param.Parameterization`
(the mixture-of-experts rules of "Hyperparameter Transfer with Mixture-of-Expert Layers").
A shape is a dict with the keys ``width``, ``depth``, ``n_experts``, ``n_active`` and
``expert_width``; the base shape of the parameterization is another such dict.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lmech._validation import check_choice, check_int, check_real, fail
from lmech.param import MoERules, Parameterization

__all__ = ["SHAPE_KEYS", "moe_gpt", "moe_param", "init_stream", "InitStream", "moe_coord_check", "MoECoordCheck",
           "lr_sweep"]

SHAPE_KEYS = ("width", "depth", "n_experts", "n_active", "expert_width")
_VOCAB = 64


def _shape(shape: Mapping[str, int], name: str) -> dict[str, int]:
    if not isinstance(shape, Mapping) or set(shape) != set(SHAPE_KEYS):
        fail(name, f"a mapping with exactly the keys {SHAPE_KEYS}", shape, TypeError)
    return {k: check_int(shape[k], f"{name}[{k!r}]", lo=1) for k in SHAPE_KEYS}


def moe_gpt(shape: Mapping[str, int], *, vocab_size: int = _VOCAB, seq_len: int = 32, head_dim: int = 16,
            combine_sum: bool = False):
    """A mixture-of-experts GPT of the given shape (``combine_sum``: no ``1/n_active``, a control)."""
    from lmech.models import GPT

    s = _shape(shape, "shape")
    model = GPT(vocab_size, seq_len=seq_len, width=s["width"], depth=s["depth"], head_dim=head_dim,
                n_experts=s["n_experts"], n_active=s["n_active"], expert_width=s["expert_width"])
    if combine_sum:
        for block in model.blocks:
            block.moe.combine_scale = 1.0
    return model


def moe_param(scheme: str, base: Mapping[str, int], **moe: Any) -> Parameterization:
    """Adam parameterization relative to the base shape ``base`` (``moe``: :class:`MoERules` fields)."""
    b = _shape(base, "base")
    return Parameterization(scheme, base_width=b["width"], base_depth=b["depth"],
                            moe=MoERules(base_expert_width=b["expert_width"], **moe))


@dataclass
class InitStream:
    """Initial statistics of the mixture-of-experts branches, seed means and standard errors.

    ``stream_var``: per-coordinate second moment of ``sum_l beta_l f_l(h_l)``, the branches'
    contribution to the residual stream after the last block (``beta_l`` the branch multiplier).
    ``layer_rms``: RMS of one layer's output ``f_l`` (averaged over layers). ``gate_sq``: mean
    squared gate ``sigmoid(r_i)^2`` of the chosen experts (1/4 once the router has shrunk).
    """

    stream_var: float
    stream_var_sem: float
    layer_rms: float
    layer_rms_sem: float
    gate_sq: float


def init_stream(shape: Mapping[str, int], param: Parameterization, *, n_seeds: int = 3, seed: int = 0,
                batch_size: int = 8, seq_len: int = 32) -> InitStream:
    """Measure :class:`InitStream` on random tokens at initialisation (``n_seeds`` draws of weights).

    The prediction of the paper's rules (completeP branches ``1/L``, gates ``sigmoid(r) ~ 1/2``,
    ``n_act = kappa E`` independent experts, down-projection ``sqrt(D)/M``) is
    ``stream_var ~ 1 / (L kappa E alpha_ffn)`` with ``alpha_ffn = M / D``, independent of ``D``;
    ``layer_rms ~ (kappa E alpha_ffn)^-1/2``.
    """
    n_seeds = check_int(n_seeds, "n_seeds", lo=1)
    seed = check_int(seed, "seed", lo=0)
    streams, rms, g2 = [], [], []
    for i in range(n_seeds):
        gen = torch.Generator().manual_seed(seed * 1009 + i)
        model = moe_gpt(shape, seq_len=seq_len)
        param.apply(model, generator=gen)
        outs: list[torch.Tensor] = []
        gates: list[float] = []

        def grab(mod, args, out):
            outs.append(out.detach())
            g, mask = mod.route(args[0].reshape(-1, args[0].shape[-1]))
            gates.append(float((g**2 * mask).sum() / mask.sum()))

        hooks = [b.moe.register_forward_hook(grab) for b in model.blocks]
        idx = torch.randint(0, _VOCAB, (batch_size, seq_len), generator=gen)
        with torch.no_grad():
            model(idx)
        for h in hooks:
            h.remove()
        total = sum(b.branch_multiplier * o for b, o in zip(model.blocks, outs))
        streams.append(float(total.pow(2).mean()))
        rms.append(float(np.mean([float(o.pow(2).mean().sqrt()) for o in outs])))
        g2.append(float(np.mean(gates)))
    se = (lambda a: float(np.std(a, ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0)
    return InitStream(float(np.mean(streams)), se(streams), float(np.mean(rms)), se(rms), float(np.mean(g2)))


@dataclass
class MoECoordCheck:
    """Result of :func:`moe_coord_check`: per tracked quantity, the log2-log2 slope over the grid of
    the seed-mean size (``size[q][t]``) and change since init (``delta[q][t]``, ``t >= 1``)."""

    axis: str
    grid: list[int]
    size: dict[str, dict[int, float]]
    delta: dict[str, dict[int, float]]
    means: dict[str, dict[str, np.ndarray]]

    def max_abs_delta_slope(self) -> float:
        return max(abs(s) for q in self.delta.values() for s in q.values())

    def max_abs_size_slope(self, exclude: Sequence[str] = ()) -> float:
        return max(abs(s) for q, v in self.size.items() if not any(e in q for e in exclude) for s in v.values())


def moe_coord_check(axis: str, grid: Sequence[int], base: Mapping[str, int], param: Parameterization, *,
                    steps: int = 4, n_seeds: int = 2, seed: int = 0, lr: float = 1e-2, combine_sum: bool = False,
                    batch_size: int = 8, seq_len: int = 32) -> MoECoordCheck:
    """Coordinate check along ``axis``: ``"n_experts"`` (``n_active`` grows with it at the base
    sparsity) or ``"expert_width"``; the other entries of the shape are those of ``base``.

    Each model is trained with Adam for ``steps`` steps on one fixed text batch (the protocol of
    :func:`lmech.sim.coord_check.coord_check`: every module output with parameters, the residual
    stream after each block, the logits) and the slopes of size and change are fitted over the grid.
    """
    from lmech.sim.coord_check import _builtin_factory, _cross_entropy, _run_one, fit_slope

    check_choice(axis, "axis", ("n_experts", "expert_width"))
    b = _shape(base, "base")
    grid = [check_int(x, "grid", lo=1) for x in grid]
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False)
    from lmech.data.text import load_text

    _, batch = _builtin_factory("gpt", batch_size, seq_len)
    vocab = load_text().vocab_size
    raw: dict[str, dict[int, list[list[tuple[float, float, float]]]]] = {}
    for x in grid:
        shape = dict(b, **{axis: x})
        if axis == "n_experts":
            shape["n_active"] = b["n_active"] * x // b["n_experts"]
        for s in range(n_seeds):
            res, _ = _run_one(lambda: moe_gpt(shape, vocab_size=vocab, seq_len=seq_len, combine_sum=combine_sum),
                              param, batch, _cross_entropy, lr, steps, 7919 * seed + 1000 * s + 17, "width")
            for q, series in res.items():
                raw.setdefault(q, {}).setdefault(x, []).append(series)
    size: dict[str, dict[int, float]] = {}
    delta: dict[str, dict[int, float]] = {}
    means: dict[str, dict[str, np.ndarray]] = {}
    for q, by_x in raw.items():
        arr = np.array([np.mean(by_x[x], axis=0) for x in grid])  # (grid, t, stat)
        means[q] = {"size": arr[:, :, 0], "delta": arr[:, :, 1]}
        size[q] = {t: fit_slope(grid, arr[:, t, 0]) for t in range(steps + 1)}
        delta[q] = {t: fit_slope(grid, arr[:, t, 1]) for t in range(1, steps + 1)}
    return MoECoordCheck(axis, grid, size, delta, means)


def lr_sweep(configs: Sequence[Any], log2_lrs: Sequence[float], seeds: Sequence[int]) -> np.ndarray:
    """Final training losses ``(len(configs), len(log2_lrs), len(seeds))`` of
    :func:`lmech.sim.hp_trial.run_trial` (``+inf`` for a diverged run); each config is a
    :class:`~lmech.sim.hp_trial.TrialConfig` whose ``lr`` and ``seed`` are replaced."""
    from lmech.sim.hp_trial import run_trial

    out = np.empty((len(configs), len(log2_lrs), len(seeds)))
    for i, cfg in enumerate(configs):
        for j, x in enumerate(log2_lrs):
            for k, s in enumerate(seeds):
                out[i, j, k] = run_trial(dataclasses.replace(cfg, lr=2.0 ** float(x), seed=int(s))).final_train_loss
    return out
