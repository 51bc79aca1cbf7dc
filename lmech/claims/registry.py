"""Claims: a paper's quantitative statement as a named, runnable check.

A claim runs a theory and a simulation on the same :class:`Setting` and returns a
:class:`ClaimOutcome` whose ``value`` is an *error-like* metric (non-negative, smaller is
better: a relative error, an exponent mismatch, a count of violated orderings). The claim
passes when ``value <= tolerance`` and every named entry of ``checks`` holds.

Registering a claim::

    @dataclass(frozen=True)
    class MySetting(Setting):
        n: int = 100
        @classmethod
        def quick(cls): return cls(n=100)
        @classmethod
        def full(cls): return cls(n=10_000)

    @claim("family.topic.case", paper="Title of the paper", statement="One sentence.",
           metric="mean relative error of E_g over P", tolerance=0.05, setting=MySetting)
    def my_claim(setting: MySetting, seed: int) -> ClaimOutcome:
        ...
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import pkgutil
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lmech._json import jsonable as _jsonable

__all__ = [
    "Setting",
    "Series",
    "Panel",
    "ClaimOutcome",
    "Tolerance",
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
    """Base class of claim settings: frozen data with a ``quick()`` and a ``full()`` size.

    Quick settings run in seconds and are what the tests use; full settings reproduce the
    paper's figure and run in the report and benchmarks.
    """

    @classmethod
    def quick(cls) -> "Setting":
        return cls()

    @classmethod
    def full(cls) -> "Setting":
        return cls()

    @classmethod
    def for_mode(cls, mode: str) -> "Setting":
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}; got {mode!r}")
        return cls.quick() if mode == "quick" else cls.full()

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


# --------------------------------------------------------------------------- plot data
def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=float).ravel())


@dataclass(frozen=True)
class Series:
    """One line or set of points on a panel.

    ``role`` picks the style: ``"theory"`` is drawn as a line, ``"simulation"`` as markers
    (with error bars when ``yerr`` is given), ``"reference"`` as a dashed line.
    """

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    yerr: tuple[float, ...] | None = None
    role: str = "theory"

    def __post_init__(self) -> None:
        object.__setattr__(self, "x", _floats(self.x))
        object.__setattr__(self, "y", _floats(self.y))
        if self.yerr is not None:
            object.__setattr__(self, "yerr", _floats(self.yerr))
        if len(self.x) != len(self.y):
            raise ValueError(f"Series {self.label!r}: x has {len(self.x)} points but y has {len(self.y)}")
        if self.yerr is not None and len(self.yerr) != len(self.y):
            raise ValueError(f"Series {self.label!r}: yerr has {len(self.yerr)} points but y has {len(self.y)}")
        if self.role not in ("theory", "simulation", "reference"):
            raise ValueError(f"Series `role` must be 'theory', 'simulation' or 'reference'; got {self.role!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "x": list(self.x),
            "y": list(self.y),
            "yerr": None if self.yerr is None else list(self.yerr),
            "role": self.role,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Series":
        return cls(d["label"], d["x"], d["y"], d.get("yerr"), d.get("role", "theory"))


@dataclass(frozen=True)
class Panel:
    """One subplot: theory and simulation drawn on the same axes."""

    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    xscale: str = "linear"
    yscale: str = "linear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "series", tuple(self.series))

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "xlabel": self.xlabel,
            "ylabel": self.ylabel,
            "xscale": self.xscale,
            "yscale": self.yscale,
            "series": [s.to_dict() for s in self.series],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Panel":
        return cls(
            d["title"], d["xlabel"], d["ylabel"], tuple(Series.from_dict(s) for s in d["series"]),
            d.get("xscale", "linear"), d.get("yscale", "linear"),
        )


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
class Claim:
    name: str
    paper: str
    statement: str
    metric: str
    tolerance: float | Tolerance
    setting: type[Setting]
    func: Callable[[Any, int], ClaimOutcome]
    module: str = ""

    def tolerance_for(self, mode: str) -> float:
        tol = self.tolerance
        return tol.for_mode(mode) if isinstance(tol, Tolerance) else float(tol)

    def evaluate(self, mode: str = "quick", seed: int = 0, setting: Setting | None = None) -> "ClaimResult":
        """Run the claim and return a :class:`ClaimResult`; exceptions become ``status='error'``."""
        from lmech.provenance import environment

        setting = self.setting.for_mode(mode) if setting is None else setting
        tol = self.tolerance_for(mode)
        started = time.time()
        t0 = time.perf_counter()
        try:
            outcome = self.func(setting, seed)
            if not isinstance(outcome, ClaimOutcome):
                raise TypeError(f"claim {self.name} returned {type(outcome).__name__}, expected ClaimOutcome")
            value = float(outcome.value)
            checks = {str(k): bool(v) for k, v in outcome.checks.items()}
            passed = bool(np.isfinite(value) and value <= tol and all(checks.values()))
            status = "passed" if passed else "failed"
            panels = [p.to_dict() for p in outcome.panels]
            details = _jsonable(outcome.details)
            error = None
        except Exception:  # a failing claim is reported, never hidden
            value, checks, passed, status = float("nan"), {}, False, "error"
            panels, details, error = [], {}, traceback.format_exc()
        seconds = time.perf_counter() - t0
        return ClaimResult(
            name=self.name, paper=self.paper, statement=self.statement, metric=self.metric,
            mode=mode, seed=seed, status=status, passed=passed, value=value, tolerance=tol,
            seconds=seconds, setting=setting.to_dict(), checks=checks, details=details,
            panels=panels, error=error, started_at=started, environment=environment(),
        )


@dataclass
class ClaimResult:
    """A finished claim: what the store keeps and the report shows."""

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

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["value"] = None if not np.isfinite(self.value) else self.value
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


# --------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Claim] = {}
_DISCOVERED = False
_NOT_CLAIM_MODULES = {"registry", "runner"}


def claim(
    name: str,
    *,
    paper: str,
    statement: str,
    metric: str,
    tolerance: float | Tolerance,
    setting: type[Setting],
) -> Callable[[Callable[[Any, int], ClaimOutcome]], Callable[[Any, int], ClaimOutcome]]:
    """Decorator registering ``func(setting, seed) -> ClaimOutcome`` as a named claim."""
    if not name or name.strip(".") != name or " " in name:
        raise ValueError(f"claim `name` must be a dotted identifier; got {name!r}")
    if not (isinstance(setting, type) and issubclass(setting, Setting)):
        raise TypeError(f"claim `setting` must be a Setting subclass; got {setting!r}")

    def register(func: Callable[[Any, int], ClaimOutcome]) -> Callable[[Any, int], ClaimOutcome]:
        existing = _REGISTRY.get(name)
        if existing is not None and (existing.module, existing.func.__qualname__) != (func.__module__, func.__qualname__):
            raise ValueError(f"claim {name!r} is registered twice ({existing.module} and {func.__module__})")
        _REGISTRY[name] = Claim(name, paper, statement, metric, tolerance, setting, func, func.__module__)
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
    """Claims whose name matches any of the glob ``patterns`` (all claims when None/empty)."""
    claims = all_claims()
    pats = [q.strip() for p in (patterns or []) for q in p.split(",") if q.strip()]
    if not pats:
        return claims
    return [c for c in claims if any(fnmatch.fnmatchcase(c.name, p) for p in pats)]
