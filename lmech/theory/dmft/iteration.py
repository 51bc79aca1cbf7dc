"""The damped alternating fixed point of the sampling DMFT with its Monte Carlo floor, optional
time continuation and final averaging (see :mod:`lmech.theory.dmft.sampling`)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from lmech.theory.dmft._common import _Problem, _rel
from lmech.theory.dmft.state import DMFTState, combine

WINDOW_AVG = 3  # sweeps averaged in the convergence test (the floor estimate is noisy)

__all__: list[str] = []


def _finite(st: DMFTState) -> bool:
    extra = [x for x in (st.ntk, st.delta, st.ftest) if x is not None]
    return all(bool(torch.isfinite(v).all()) for v in st.tensors() + extra)


def _run(solver, pb: _Problem, *, damping, tol, max_sweeps, average, noise_factor, chunk,
         sweeps_per_window, progress, where):
    """Damped alternating fixed point, optional time continuation, final averaging.

    A solver with ``fixed = True`` (common random numbers: each sweep is a deterministic map)
    has no Monte Carlo floor and no averaging: it stops once the change is below ``tol`` and
    returns that state (``mc_error`` nan, no blocks).

    Returns (state, sweeps, residual, floor, converged, diverged, mc_error, history, blocks), with
    ``blocks`` the closed half-sample states of the final averaging (for standard errors)."""
    T1_full = pb.steps + 1
    beta = damping
    fixed = bool(getattr(solver, "fixed", False))  # common random numbers (see _Deep)
    win_avg = 1 if fixed else WINDOW_AVG
    # stationary sweep-to-sweep change of a damped iteration driven by noise of size sigma
    floor_scale = beta * math.sqrt(2.0 / (2.0 - beta))
    if chunk is None:
        windows = [T1_full]
    else:
        windows = list(range(min(chunk, pb.steps) + 1, T1_full, chunk)) + [T1_full]
    st = solver.initial_state(windows[0])
    total, history = 0, []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, desc=where, leave=False)
    y0 = float(torch.sum(pb.y**2))
    diverged = converged = False
    residual, floor = float("inf"), 0.0

    def blew_up(s):
        return not _finite(s) or float(torch.sum(s.delta ** 2)) > 1e8 * max(y0, 1e-300)

    for wi, T1 in enumerate(windows):
        if wi > 0:
            st = solver.extend(st, T1)
        final = T1 == T1_full
        recent: list[Any] = []  # (changes, floors) per monitored key over the last sweeps of this window
        for _ in range(max_sweeps if final else sweeps_per_window):
            ests = solver.sweep(st)
            halves = [] if fixed else [solver.closure(e) for e in ests]
            new = solver.closure(combine(lambda a, b: 0.5 * (a + b), *ests))
            changes = np.array([beta * _rel(a, b) for a, b in zip(solver.monitored(new), solver.monitored(st))])
            # Monte Carlo floor of the change: the half-sample difference / 2 is the noise of
            # the full-sample estimate; floor_scale turns it into the stationary change
            if fixed:  # a deterministic map: no Monte Carlo floor
                floors = np.zeros(len(changes))
            else:
                floors = np.array([floor_scale * 0.5 * _rel(a, b)
                                   for a, b in zip(solver.monitored(halves[0]), solver.monitored(halves[1]))])
            st_next = solver.closure(combine(lambda a, b: (1.0 - beta) * a + beta * b, st, new))
            total += 1
            if blew_up(st_next):
                diverged = True
                break
            st = st_next
            recent = (recent + [(changes, floors)])[-win_avg:]
            c_avg = np.mean([c for c, _ in recent], axis=0)
            f_avg = np.mean([f for _, f in recent], axis=0)
            residual, floor = float(c_avg.max()), float(f_avg.max())
            history.append(float(changes.max()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(window=T1, change=f"{residual:.2e}", floor=f"{floor:.1e}")
            # converged: every monitored change, averaged over the last sweeps, is below tol
            # or within noise_factor of its own Monte Carlo floor
            if len(recent) == win_avg and bool(np.all((c_avg <= tol) | (c_avg <= noise_factor * f_avg))):
                converged = final
                break
        if diverged:
            break
    mc = float("nan")
    blocks: list[DMFTState] = []
    if fixed:
        pass  # the fixed point of the sample-average equations is the answer: nothing to average
    elif not diverged:
        # average fresh estimates at the fixed point (reduces the Monte Carlo error)
        acc, deltas = None, []
        for _ in range(average):
            ests = solver.sweep(st)
            new = combine(lambda a, b: 0.5 * (a + b), *ests)
            deltas.append(solver.closure(new).delta)
            blocks.extend(solver.closure(e) for e in ests)
            acc = new if acc is None else combine(torch.add, acc, new)
            total += 1
            if bar is not None:
                bar.update(1)
        assert acc is not None  # average >= 1 (validated)
        st_avg = solver.closure(combine(lambda a: a / average, acc))
        if blew_up(st_avg):
            diverged, converged = True, False
        else:
            st = st_avg
            if average > 1:
                D = torch.stack(deltas)
                mc = float(torch.linalg.vector_norm(D.std(0)) / math.sqrt(average)
                           / max(float(torch.linalg.vector_norm(st.delta)), 1e-300))
    if bar is not None:
        bar.close()
    if diverged:
        blocks = []
    return st, total, residual, floor, converged, diverged, mc, history, blocks
