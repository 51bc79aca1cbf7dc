"""Toy claims used by the framework tests (importable by spawned worker processes)."""
from dataclasses import dataclass

import numpy as np

from lmech.claims import ClaimOutcome, Panel, Series, Setting, claim


@dataclass(frozen=True)
class ToySetting(Setting):
    n: int = 10
    bias: float = 0.0

    @classmethod
    def quick(cls):
        return cls(n=10, bias=0.0)

    @classmethod
    def full(cls):
        return cls(n=50, bias=0.3)


def _toy(setting: ToySetting, seed: int) -> ClaimOutcome:
    rng = np.random.default_rng(seed)
    x = np.arange(1, setting.n + 1, dtype=float)
    theory = 1.0 / x
    sim = theory * (1 + setting.bias + 0.001 * rng.standard_normal(setting.n))
    err = float(np.mean(np.abs(sim / theory - 1)))
    panel = Panel("toy", "x", "y", (Series("toy theory", x, theory), Series("toy sim", x, sim, role="simulation")),
                  xscale="log", yscale="log")
    return ClaimOutcome(value=err, panels=[panel], details={"per_point": sim / theory - 1})


def _boom(setting: ToySetting, seed: int) -> ClaimOutcome:
    raise RuntimeError("deliberate failure")


def register() -> None:
    kw = dict(paper="Toy paper", statement="1/x is 1/x.", metric="mean relative error", setting=ToySetting)
    claim("toy.ok", tolerance=0.05, **kw)(_toy)
    claim("toy.crash", tolerance=0.05, **kw)(_boom)


register()
