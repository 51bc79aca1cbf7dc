"""Toy claims used by the framework, engine and CLI tests.

Importing this module registers them (so spawned and Ray workers, which import the claim's
module, find them); :func:`register` registers them again after a test restored the
registry. Settings are frozen dataclass instances; ``sleep`` holds a worker busy, and a
sleeping claim appends its pid to the file named by ``$TOY_CLAIM_STARTED`` when it starts.

* ``toy.ok`` passes in quick mode (value ~1e-3 <= 0.05) and fails in full mode (bias 0.3);
* ``toy.crash`` raises; ``toy.sigkill`` kills its own worker process with SIGKILL;
* ``toy.slow`` sleeps ``sleep`` seconds, then passes;
* ``toy.known`` is a known failure (value 0.3 > 0.05) in quick mode; ``toy.known_fixed``
  is declared a known failure but passes;
* ``toy.fragile`` passes at even seeds only, declared fragile over 3 seeds with 1 needed.
"""
import os
import signal
import time
from dataclasses import dataclass

import numpy as np

from lmech.claims import ClaimOutcome, Panel, Series, Setting, claim, fragile, known_failure
from lmech.seeds import SeedStream

PAPER = "Toy paper"
METRIC = "mean relative error of the toy curve over x (to 1/x)"


@dataclass(frozen=True)
class ToySetting(Setting):
    n: int = 10
    bias: float = 0.0
    sleep: float = 0.0


STARTED_ENV = "TOY_CLAIM_STARTED"  # a file to which a slow claim appends its pid when it starts


def _curve(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
    if s.sleep and os.environ.get(STARTED_ENV):
        with open(os.environ[STARTED_ENV], "a") as fh:
            fh.write(f"{os.getpid()}\n")
    if s.sleep:
        time.sleep(s.sleep)
    rng = np.random.default_rng(seeds.next())
    x = np.arange(1, s.n + 1, dtype=float)
    theory = 1.0 / x
    sim = theory * (1 + s.bias + 0.001 * rng.standard_normal(s.n))
    err = float(np.mean(np.abs(sim / theory - 1)))
    panel = Panel("toy", "x", "y", (Series("toy theory", x, theory), Series("toy sim", x, sim, role="simulation")),
                  xscale="log", yscale="log")
    return ClaimOutcome(value=err, panels=[panel], details={"per_point": sim / theory - 1})


QUICK = ToySetting()
FULL = ToySetting(n=50, bias=0.3)


def register() -> None:
    @claim("toy.ok", paper=PAPER, metric=METRIC, tolerance=0.05, quick=QUICK, full=FULL)
    def toy_ok(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
        """1/x is 1/x."""
        return _curve(s, seeds)

    @claim("toy.crash", paper=PAPER, metric=METRIC, tolerance=0.05, quick=QUICK, full=FULL)
    def toy_crash(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
        """A claim whose code raises."""
        raise RuntimeError("deliberate failure")

    @claim("toy.sigkill", paper=PAPER, metric=METRIC, tolerance=0.05, quick=QUICK, full=FULL)
    def toy_sigkill(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
        """A claim that kills its own process (as the out-of-memory killer would)."""
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    @claim("toy.slow", paper=PAPER, metric=METRIC, tolerance=0.05, quick=ToySetting(sleep=60.0), full=FULL)
    def toy_slow(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
        """A claim that takes a minute in its quick setting."""
        return _curve(s, seeds)

    @claim("toy.known", paper=PAPER, metric=METRIC, tolerance=0.05, quick=FULL, full=FULL,
           expect=known_failure("the toy simulation is biased by 30% (measured value 0.3)"))
    def toy_known(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
        """A claim that fails as measured."""
        return _curve(s, seeds)

    @claim("toy.known_fixed", paper=PAPER, metric=METRIC, tolerance=0.05, quick=QUICK, full=FULL,
           expect=known_failure("was biased; fixed since", modes=("quick",)))
    def toy_known_fixed(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
        """A known failure that now passes."""
        return _curve(s, seeds)

    @claim("toy.fragile", paper=PAPER, metric=METRIC, tolerance=0.05, quick=QUICK, full=FULL,
           expect=fragile("passes at even seeds only", n_seeds=3, min_passing=1))
    def toy_fragile(s: ToySetting, seeds: SeedStream) -> ClaimOutcome:
        """A claim that passes at some seeds only."""
        out = _curve(s, seeds)
        return ClaimOutcome(value=out.value + (0.0 if seeds.seed % 2 == 0 else 1.0), panels=out.panels)


register()
