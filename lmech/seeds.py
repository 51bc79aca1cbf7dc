"""Seed streams: independent seeds without hand-made offsets (base layer).

A :class:`SeedStream` wraps :class:`numpy.random.SeedSequence`. Each call of
:meth:`SeedStream.next` spawns a fresh child and returns a 32-bit integer seed for a
function that takes ``seed: int``; :meth:`SeedStream.rng` gives a ``Generator`` directly.
Children are statistically independent and the sequence is fixed by the root seed and the
key, so the same seed gives the same numbers. The key (for a claim, its name) keeps two
claims run at the same seed from sharing random numbers.

Example::

    seeds = SeedStream(0, "kernel.learning_curve.synthetic")
    a, b = seeds.next(), seeds.next()          # two independent int seeds
    per_width = seeds.take(4)                  # a tuple of four
"""
from __future__ import annotations

import zlib

import numpy as np

__all__ = ["SeedStream"]


def _key_entropy(key: str) -> int:
    return zlib.crc32(key.encode("utf-8"))


class SeedStream:
    """Independent integer seeds drawn from ``SeedSequence([seed, crc32(key)])``.

    Parameters
    ----------
    seed : int
        The root seed (non-negative).
    key : str, optional
        A label mixed into the entropy (a claim's name).
    """

    def __init__(self, seed: int, key: str = "") -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"`seed` must be an integer; got {seed!r}")
        if seed < 0:
            raise ValueError(f"`seed` must be >= 0; got {seed}")
        if not isinstance(key, str):
            raise TypeError(f"`key` must be a string; got {key!r}")
        self.seed = int(seed)
        self.key = key
        entropy = [self.seed, _key_entropy(key)] if key else [self.seed]
        self._seq = np.random.SeedSequence(entropy)

    def __repr__(self) -> str:
        return f"SeedStream(seed={self.seed}, key={self.key!r}, spawned={self._seq.n_children_spawned})"

    def next(self) -> int:
        """A fresh integer seed in ``[0, 2**31)`` (independent of every other one drawn)."""
        child = self._seq.spawn(1)[0]
        return int(child.generate_state(1, dtype=np.uint32)[0] >> 1)

    def take(self, n: int) -> tuple[int, ...]:
        """``n`` fresh integer seeds."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"`n` must be a non-negative integer; got {n!r}")
        return tuple(self.next() for _ in range(int(n)))

    def rng(self) -> np.random.Generator:
        """A fresh ``numpy.random.Generator`` on its own child sequence."""
        return np.random.default_rng(self._seq.spawn(1)[0])

    def stream(self, key: str = "") -> "SeedStream":
        """A child stream (for a helper that draws its own seeds)."""
        child = SeedStream(self.next(), key)
        return child
