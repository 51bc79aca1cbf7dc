"""Timing helpers shared by the benchmark scripts: interleaved repeats, medians, ratios."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence


def time_once(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(fns: Sequence[Callable[[], object]], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Median wall time of each function, timed in interleaved rounds (A B A B ...) so that
    machine-load drift affects all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            samples[i].append(time_once(fn))
    return [statistics.median(s) for s in samples]
