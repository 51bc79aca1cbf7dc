"""Timing helpers shared by the benchmark scripts: interleaved repeats, medians, ratios.

Clocks: ``"wall"`` (``time.perf_counter``) or ``"cpu"`` (``time.process_time``, CPU seconds
of this process -- the fairer figure on a shared, loaded machine).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_once(fn: Callable[[], object], clock: str = "wall") -> float:
    tick = CLOCKS[clock]
    t0 = tick()
    fn()
    return tick() - t0


def interleaved_clocks(fns: Sequence[Callable[[], object]], repeats: int = 5, warmup: int = 1,
                       clocks: Sequence[str] = ("wall", "cpu")) -> list[tuple[float, ...]]:
    """Median time of each function on each of ``clocks``, timed in interleaved rounds
    (A B A B ...) so that machine-load drift affects all of them alike."""
    ticks = [CLOCKS[c] for c in clocks]
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[tuple[float, ...]]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = [tick() for tick in ticks]
            fn()
            samples[i].append(tuple(tick() - t0 for tick, t0 in zip(ticks, start)))
    return [tuple(statistics.median(s[j] for s in rows) for j in range(len(ticks))) for rows in samples]


def interleaved(fns: Sequence[Callable[[], object]], repeats: int = 5, warmup: int = 1,
                clock: str = "wall") -> list[float]:
    """Median time of each function on one clock, in interleaved rounds."""
    return [t[0] for t in interleaved_clocks(fns, repeats=repeats, warmup=warmup, clocks=(clock,))]
