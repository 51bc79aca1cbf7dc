"""Log-spaced windows of training steps, for averaging noisy learning curves.

A simulated loss at one step of small-batch SGD or TD is heavy-tailed; its average over a
window of neighbouring steps is much less noisy, and comparing it with the theory averaged
over the *same* window biases neither side. :func:`log_windows` groups the integer steps
``t_min..t_max`` into windows equally spaced in ``log t``; :class:`StepWindows` averages a
curve over them.

Example::

    w = log_windows(5, 800, 10)
    sim_windowed = w.mean(sim.losses)          # (..., n_windows), sim recorded at every step
    w4 = log_windows(2, 600, 8, per_window=4)  # record only w4.steps, then
    w4.mean(values_at_w4_steps, recorded=True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech._validation import check_int, fail

__all__ = ["StepWindows", "log_windows"]


@dataclass(frozen=True)
class StepWindows:
    """Disjoint, increasing windows of integer steps.

    Attributes
    ----------
    windows : tuple of ndarray of int
        The steps of each window, in increasing order.
    """

    windows: tuple[np.ndarray, ...]

    @property
    def steps(self) -> np.ndarray:
        """Every step in some window, increasing (record a simulation at these)."""
        return np.concatenate(self.windows)

    @property
    def centres(self) -> np.ndarray:
        """Geometric mean step of each window (where to draw the window's average)."""
        return np.array([np.exp(np.mean(np.log(np.maximum(w, 1)))) for w in self.windows])

    def _index(self, values, recorded: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        v = np.asarray(values, dtype=np.float64)
        if recorded:
            if v.shape[-1] != self.steps.size:
                fail("values", f"a last axis of length {self.steps.size} (one entry per recorded step)", v.shape)
            pos = np.cumsum([0] + [w.size for w in self.windows])
            return v, [np.arange(a, b) for a, b in zip(pos[:-1], pos[1:])]
        if v.shape[-1] <= self.windows[-1][-1]:
            fail("values", f"a last axis indexed by step up to {self.windows[-1][-1]}", v.shape)
        return v, list(self.windows)

    def mean(self, values, *, recorded: bool = False) -> np.ndarray:
        """Average the last axis of ``values`` over each window -> shape ``(..., n_windows)``.

        ``values[..., t]`` is the value at step t, or with ``recorded=True`` the value at
        ``steps[t]`` (a simulation recorded only at :attr:`steps`).
        """
        v, idx = self._index(values, recorded)
        return np.stack([v[..., i].mean(axis=-1) for i in idx], axis=-1)

    def max(self, values, *, recorded: bool = False) -> np.ndarray:
        """The largest entry of the last axis in each window (e.g. a conservative standard error)."""
        v, idx = self._index(values, recorded)
        return np.stack([v[..., i].max(axis=-1) for i in idx], axis=-1)


def log_windows(t_min: int, t_max: int, n_windows: int, *, per_window: int | None = None) -> StepWindows:
    """The steps ``t_min..t_max`` in ``n_windows`` windows equally spaced in ``log t``.

    Window j holds the integers in ``[ceil(e_j), ceil(e_{j+1}))`` with edges
    ``e = geomspace(t_min, t_max + 1, n_windows + 1)``; empty windows (early, where the
    edges are closer than one step) are dropped. ``per_window`` keeps at most that many
    evenly spread steps of each window (to record a long run at few steps).
    """
    lo = check_int(t_min, "t_min", lo=1)
    hi = check_int(t_max, "t_max", lo=lo)
    n = check_int(n_windows, "n_windows", lo=1)
    keep = None if per_window is None else check_int(per_window, "per_window", lo=1)
    edges = np.geomspace(lo, hi + 1, n + 1)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        s = np.arange(int(np.ceil(a)), int(np.ceil(b)))
        s = s[(s >= lo) & (s <= hi)]
        if s.size and keep is not None:
            s = s[np.unique(np.linspace(0, s.size - 1, min(keep, s.size)).astype(int))]
        if s.size:
            out.append(s)
    return StepWindows(tuple(out))
