"""The stored form of a finished claim, and what its expectation makes of it.

A :class:`ClaimResult` is what the run engine stores, ``results.json`` lists and the report
draws. It is plain data (JSON round trip through ``to_dict``/``from_dict``) so the report
and the store never need the claim's code. Base layer: imports nothing of lmech but other
base modules.

Expectations
------------
Each claim declares what its measured outcome is expected to be:

* ``pass`` - the default: the metric is within tolerance and every check holds;
* ``known_failure`` - it fails as measured, for the stated ``reason`` (a measured one);
* ``fragile`` - it passes at some seeds and not others: it runs on ``n`` seeds and the
  result says ``k of n`` passed; it meets its expectation when ``k >= min_passing``.

:attr:`ClaimResult.category` combines the measured status with the expectation into one of
``passed``, ``known_failure``, ``fragile``, ``failed`` (an unexpected failure),
``unexpected_pass`` (a known failure that now passes: its expectation must be updated)
and ``error``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmech.plotdata import Panel

__all__ = ["ClaimResult", "CATEGORIES", "MET_CATEGORIES", "EXPECT_KINDS", "summary_counts", "summary_line"]

EXPECT_KINDS = ("pass", "known_failure", "fragile")
CATEGORIES = ("passed", "known_failure", "fragile", "failed", "unexpected_pass", "error")
MET_CATEGORIES = ("passed", "known_failure", "fragile")  # outcomes that meet the expectation
_CATEGORY_WORDS = {  # (one, many)
    "passed": ("passed", "passed"), "known_failure": ("known failure", "known failures"),
    "fragile": ("fragile (passed at some seeds)", "fragile (passed at some seeds)"),
    "failed": ("failed unexpectedly", "failed unexpectedly"),
    "unexpected_pass": ("known failure now passing", "known failures now passing"), "error": ("error", "errors"),
}


@dataclass
class ClaimResult:
    """A finished claim: what the store keeps and the report shows.

    ``status`` is the measured outcome (``passed``, ``failed`` or ``error``); for a fragile
    claim it is ``passed`` only when every seed passed. ``seed_results`` lists, for a
    fragile claim, ``{"seed", "value", "passed"}`` per seed run (empty otherwise).
    """

    name: str
    paper: str
    statement: str
    metric: str
    mode: str
    seed: int
    status: str  # "passed" | "failed" | "error"
    passed: bool
    value: float
    tolerance: float
    seconds: float
    setting: dict[str, Any]
    checks: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    panels: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    started_at: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    expect: str = "pass"
    reason: str = ""
    min_passing: int = 1
    seed_results: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ verdicts
    @property
    def seeds_passed(self) -> int:
        """How many seeds passed (``k`` of ``k of n``); 0 or 1 for a single-seed claim."""
        if self.seed_results:
            return sum(bool(r.get("passed")) for r in self.seed_results)
        return int(self.status == "passed")

    @property
    def seeds_run(self) -> int:
        return len(self.seed_results) or 1

    @property
    def category(self) -> str:
        """The measured status read against the expectation (see the module docstring)."""
        if self.status == "error":
            return "error"
        if self.expect == "known_failure":
            return "unexpected_pass" if self.status == "passed" else "known_failure"
        if self.expect == "fragile":
            if self.seeds_passed == self.seeds_run:
                return "passed"
            return "fragile" if self.seeds_passed >= self.min_passing else "failed"
        return "passed" if self.status == "passed" else "failed"

    @property
    def met_expectation(self) -> bool:
        return self.category in MET_CATEGORIES

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["value"] = None if not np.isfinite(self.value) else self.value
        d["category"] = self.category
        d["met_expectation"] = self.met_expectation
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClaimResult":
        d = dict(d)
        d["value"] = float("nan") if d.get("value") is None else float(d["value"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @property
    def panel_objects(self) -> list[Panel]:
        return [Panel.from_dict(p) for p in self.panels]


def summary_counts(results: list[ClaimResult]) -> dict[str, int]:
    """Number of results per :data:`CATEGORIES` entry (every category present, zeros too)."""
    counts = {c: 0 for c in CATEGORIES}
    for r in results:
        counts[r.category] += 1
    return counts


def summary_line(results: list[ClaimResult]) -> str:
    """One line such as ``66 passed, 2 known failures`` (zero counts left out)."""
    counts = summary_counts(results)
    parts = [f"{n} {_CATEGORY_WORDS[c][n != 1]}" for c, n in counts.items() if n]
    return ", ".join(parts) if parts else "no claims"
