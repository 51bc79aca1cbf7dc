"""Claims: a paper's quantitative statement as a named, runnable check.

A claim runs a theory and a simulation on the same setting and returns a
:class:`ClaimOutcome` whose ``value`` is an *error-like* metric (non-negative, smaller is
better: a relative error, an exponent mismatch, a count of violated orderings). The claim
passes when ``value <= tolerance`` and every named entry of ``checks`` holds. Its
``expect`` says whether it is expected to pass (the default), to fail as measured
(:func:`known_failure`, with the measured reason users see) or to pass at some seeds only
(:func:`fragile`, run on ``n`` seeds).

A claim is short: the setting is data (a frozen dataclass instance for each of ``quick``
and ``full``), the statement is the first paragraph of the docstring, seeds come from a
:class:`~lmech.seeds.SeedStream` (no hand-made offsets), and measurement, equations,
metrics, fits and panels come from ``sim/``, ``theory/`` and :mod:`lmech.claims.toolkit`::

    @dataclass(frozen=True)
    class Curve(Setting):
        n: int = 100

    @claim("family.topic.case", paper=PAPER, metric="mean relative error of E_g over P (to theory)",
           tolerance=0.05, quick=Curve(), full=Curve(n=10_000))
    def my_claim(s: Curve, seeds: SeedStream) -> ClaimOutcome:
        '''The theory predicts the simulated learning curve at every P.'''
        th = theory.curve(s.n)
        sim = simulate(s.n, seed=seeds.next())
        cmp = compare("", th.P, th.loss, sim.mean, sim.sem, title="...", xlabel="P", ylabel="E_g")
        return cmp.outcome("mean")
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import inspect
import pkgutil
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmech._errors import UsageError
from lmech._json import jsonable as _jsonable
from lmech.plotdata import Panel, Series
from lmech.records import ClaimResult
from lmech.seeds import SeedStream

__all__ = [
    "Setting",
    "Series",
    "Panel",
    "ClaimOutcome",
    "Tolerance",
    "Expectation",
    "known_failure",
    "fragile",
    "Claim",
    "ClaimResult",
    "claim",
    "all_claims",
    "get_claim",
    "select_claims",
    "MODES",
]

MODES = ("quick", "full")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Setting:
    """Optional base class of claim settings: a frozen dataclass with ``to_dict``.

    A claim takes one instance for its ``quick`` size (seconds; what the tests and the demo
    use) and one for its ``full`` size (the paper's figure). Any frozen dataclass works.
    """

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


def _setting_dict(setting: Any) -> dict[str, Any]:
    return _jsonable(dataclasses.asdict(setting))


# --------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class ClaimOutcome:
    """What a claim function returns.

    Attributes
    ----------
    value : float
        The metric (error-like: smaller is better; compared with the claim's tolerance).
    panels : sequence of Panel
        Curves to plot, theory and simulation on the same axes.
    checks : dict[str, bool]
        Extra named criteria that must all hold for the claim to pass (e.g. a negative
        control separating). They are reported one by one.
    details : dict
        JSON-serialisable numbers worth showing in the report (per-point errors, fitted
        exponents, seeds used, ...).
    """

    value: float
    panels: Sequence[Panel] = ()
    checks: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tolerance:
    """Separate tolerances for the quick and the full setting.

    Use only when the quick setting is provably noisier (fewer seeds, smaller width) and say
    why in the claim's docstring; the full tolerance is the paper-level statement.
    """

    quick: float
    full: float

    def for_mode(self, mode: str) -> float:
        return self.quick if mode == "quick" else self.full


@dataclass(frozen=True)
class Expectation:
    """What a claim's measured outcome is expected to be, in the given ``modes``.

    Build with :func:`known_failure` or :func:`fragile`; the default is ``pass``.
    """

    kind: str = "pass"
    reason: str = ""
    modes: tuple[str, ...] = MODES
    n_seeds: int = 1
    min_passing: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("pass", "known_failure", "fragile"):
            raise ValueError(f"Expectation `kind` must be 'pass', 'known_failure' or 'fragile'; got {self.kind!r}")
        if self.kind != "pass" and not self.reason.strip():
            raise ValueError(f"a {self.kind} expectation needs a measured `reason`")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"Expectation `modes` must be a non-empty subset of {MODES}; got {self.modes!r}")
        if self.kind == "fragile" and not (1 <= self.min_passing <= self.n_seeds and self.n_seeds >= 2):
            raise ValueError(f"fragile needs n_seeds >= 2 and 1 <= min_passing <= n_seeds; "
                             f"got n_seeds={self.n_seeds}, min_passing={self.min_passing}")


def known_failure(reason: str, *, modes: Sequence[str] = MODES) -> Expectation:
    """The claim fails as measured, for ``reason`` (shown to users), in ``modes``."""
    return Expectation("known_failure", reason, tuple(modes))


def fragile(reason: str, *, n_seeds: int = 3, min_passing: int = 1, modes: Sequence[str] = MODES) -> Expectation:
    """The claim passes at some seeds only: run it on ``n_seeds`` seeds and report k of n.

    It meets its expectation when at least ``min_passing`` seeds pass.
    """
    return Expectation("fragile", reason, tuple(modes), int(n_seeds), int(min_passing))


_PASS = Expectation()


def _statement(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    first = doc.split("\n\n", 1)[0]
    return " ".join(first.split())


@dataclass(frozen=True)
class Claim:
    """A registered claim (see :func:`claim`)."""

    name: str
    paper: str
    statement: str
    metric: str
    tolerance: float | Tolerance
    quick: Any
    full: Any
    func: Callable[[Any, SeedStream], ClaimOutcome]
    module: str = ""
    expect: tuple[Expectation, ...] = ()
    slow: bool = False

    def tolerance_for(self, mode: str) -> float:
        tol = self.tolerance
        return tol.for_mode(mode) if isinstance(tol, Tolerance) else float(tol)

    def setting_for(self, mode: str) -> Any:
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}; got {mode!r}")
        return self.quick if mode == "quick" else self.full

    def expectation_for(self, mode: str) -> Expectation:
        for e in self.expect:
            if mode in e.modes:
                return e
        return _PASS

    def _run_once(self, setting: Any, seed: int, tol: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            outcome = self.func(setting, SeedStream(seed, self.name))
            if not isinstance(outcome, ClaimOutcome):
                raise TypeError(f"claim {self.name} returned {type(outcome).__name__}, expected ClaimOutcome")
            value = float(outcome.value)
            checks = {str(k): bool(v) for k, v in outcome.checks.items()}
            passed = bool(np.isfinite(value) and value <= tol and all(checks.values()))
            return dict(status="passed" if passed else "failed", passed=passed, value=value, checks=checks,
                        panels=[p.to_dict() for p in outcome.panels], details=_jsonable(outcome.details),
                        error=None, seconds=time.perf_counter() - t0)
        except Exception:  # a failing claim is reported, never hidden
            return dict(status="error", passed=False, value=float("nan"), checks={}, panels=[], details={},
                        error=traceback.format_exc(), seconds=time.perf_counter() - t0)

    def evaluate(self, mode: str = "quick", seed: int = 0, setting: Any = None) -> ClaimResult:
        """Run the claim and return a :class:`ClaimResult`; exceptions become ``status='error'``.

        A fragile claim runs on seeds ``seed, seed + 1, ..., seed + n - 1``; the result
        carries the first seed's value and panels and every seed's value in ``seed_results``.
        """
        from lmech.provenance import environment

        setting = self.setting_for(mode) if setting is None else setting
        tol = self.tolerance_for(mode)
        exp = self.expectation_for(mode)
        started = time.time()
        runs = [self._run_once(setting, seed + i, tol) for i in range(exp.n_seeds)]
        first = runs[0]
        status = first["status"]
        seed_results: list[dict[str, Any]] = []
        if exp.kind == "fragile":
            seed_results = [{"seed": seed + i, "value": r["value"] if np.isfinite(r["value"]) else None,
                             "passed": r["passed"], "status": r["status"]} for i, r in enumerate(runs)]
            errors = [r for r in runs if r["status"] == "error"]
            status = "error" if errors else ("passed" if all(r["passed"] for r in runs) else "failed")
            if errors:
                first = {**first, "error": errors[0]["error"]}
        return ClaimResult(
            name=self.name, paper=self.paper, statement=self.statement, metric=self.metric,
            mode=mode, seed=seed, status=status, passed=status == "passed", value=first["value"], tolerance=tol,
            seconds=sum(r["seconds"] for r in runs), setting=_setting_dict(setting), checks=first["checks"],
            details=first["details"], panels=first["panels"], error=first["error"], started_at=started,
            environment=environment(), expect=exp.kind, reason=exp.reason, min_passing=exp.min_passing,
            seed_results=seed_results,
        )


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Claim] = {}
_DISCOVERED = False
_NOT_CLAIM_MODULES = {"registry", "runner", "toolkit"}


def claim(
    name: str,
    *,
    paper: str,
    metric: str,
    tolerance: float | Tolerance,
    quick: Any = None,
    full: Any = None,
    expect: Expectation | Sequence[Expectation] = (),
    slow: bool = False,
) -> Callable[[Callable[[Any, SeedStream], ClaimOutcome]], Callable[[Any, SeedStream], ClaimOutcome]]:
    """Decorator registering ``func(setting, seeds) -> ClaimOutcome`` as a named claim.

    Parameters
    ----------
    name : str
        Dotted name, ``family.topic.case``.
    paper : str
        Title of the paper whose statement this is.
    metric : str
        What ``value`` measures (say the reduction and the denominator).
    tolerance : float or Tolerance
        ``value <= tolerance`` passes.
    quick, full : dataclass instances
        The settings of the two sizes (``full`` defaults to ``quick``).
    expect : Expectation or sequence of them
        From :func:`known_failure` or :func:`fragile`, each for its modes; default: pass.
    slow : bool
        The quick setting takes long enough (about 30 s or more) that the default test run
        leaves it to the ``slow`` marker.

    Notes
    -----
    The statement shown to users is the first paragraph of ``func``'s docstring.
    """
    if not isinstance(name, str) or not name or name.strip(".") != name or " " in name:
        raise ValueError(f"claim `name` must be a dotted identifier; got {name!r}")
    if quick is None:
        raise TypeError(f"claim {name!r}: `quick` (the quick setting, a dataclass instance) is required")
    for arg, value in (("quick", quick), ("full", full)):
        if value is not None and not (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            raise TypeError(f"claim `{arg}` must be a dataclass instance (the setting); got {value!r}")
    expects = (expect,) if isinstance(expect, Expectation) else tuple(expect)
    seen = [m for e in expects for m in e.modes]
    if len(seen) != len(set(seen)):
        raise ValueError(f"claim {name!r}: two expectations cover the same mode ({seen})")

    def register(func: Callable[[Any, SeedStream], ClaimOutcome]) -> Callable[[Any, SeedStream], ClaimOutcome]:
        text = _statement(func)
        if not text:
            raise ValueError(f"claim {name!r}: the function needs a docstring (its first paragraph is the statement)")
        existing = _REGISTRY.get(name)
        if existing is not None and (existing.module, existing.func.__qualname__) != (func.__module__, func.__qualname__):
            raise ValueError(f"claim {name!r} is registered twice ({existing.module} and {func.__module__})")
        _REGISTRY[name] = Claim(name, paper, text, metric, tolerance, quick, quick if full is None else full,
                                func, func.__module__, expects, bool(slow))
        return func

    return register


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    import lmech.claims as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name in _NOT_CLAIM_MODULES:
            continue
        importlib.import_module(f"lmech.claims.{info.name}")
    _DISCOVERED = True


def all_claims() -> list[Claim]:
    """Every registered claim, sorted by name (imports the claim modules on first use)."""
    _discover()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_claim(name: str) -> Claim:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown claim {name!r}; `lmech claims list` shows the registered ones") from None


def select_claims(patterns: Iterable[str] | None = None) -> list[Claim]:
    """Claims whose name matches any of the glob ``patterns`` (all claims when None/empty).

    Patterns may be repeated or comma-separated. A pattern that matches no claim raises
    :class:`~lmech._errors.UsageError` (a ``ValueError``) naming it, so a typo is never
    silently dropped.
    """
    claims = all_claims()
    pats = [q.strip() for p in (patterns or []) for q in str(p).split(",") if q.strip()]
    if not pats:
        return claims
    unmatched = [p for p in pats if not any(fnmatch.fnmatchcase(c.name, p) for c in claims)]
    if unmatched:
        raise UsageError(f"--only pattern(s) {', '.join(map(repr, unmatched))} match no claim; "
                         "`lmech claims list` shows the registered names")
    return [c for c in claims if any(fnmatch.fnmatchcase(c.name, p) for p in pats)]
