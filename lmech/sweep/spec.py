"""Sweep specifications: which trial function, which fixed config, which grid.

A sweep is the Cartesian product of the ``grid`` axes, each point merged into the fixed
``base`` config and handed to a *trial function* named by an import path
``"package.module:function"``. A trial function takes one JSON-able config ``dict`` and
returns a JSON-able ``dict`` (or an object with ``to_dict()``); the only key the sweep
machinery itself reads is ``"diverged"`` (truthy: the run blew up; recorded as diverged,
not as an error).

Identity is content-based: a trial is the SHA-256 of its canonical JSON
(``{"trial": path, "config": config}`` with sorted keys), and a sweep is the hash of the
sorted set of its trial keys. Two specs that produce the same trials are the same sweep,
whatever the order of axes or values.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from lmech._json import jsonable
from lmech._validation import check_int, check_real, fail
from lmech.executors import check_import_path, resolve_callable

__all__ = [
    "SweepSpec",
    "transfer_spec",
    "trial_key",
    "canonical_json",
    "resolve_trial",
    "trial_from_callable",
    "DEFAULT_TRIAL",
]

DEFAULT_TRIAL = "lmech.sim.hp_trial:run_trial"


def canonical_json(obj: Any) -> str:
    """Sorted-key, whitespace-free JSON of ``obj`` (numpy scalars converted; NaN/inf rejected)."""
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def trial_key(trial: str, config: Mapping[str, Any]) -> str:
    """Identity of one trial: the first 20 hex digits of SHA-256 of its canonical JSON."""
    text = canonical_json({"trial": trial, "config": dict(config)})
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def resolve_trial(path: str) -> Callable[[dict], Any]:
    """Import the trial function named ``"package.module:function"``."""
    return resolve_callable(_check_trial_path(path))


def _is_local_name(path: str) -> bool:
    return path.startswith("<callable ") and path.endswith(">")


def trial_from_callable(fn: Callable[..., Any]) -> tuple[str, Callable[..., Any] | None]:
    """``(name, local)`` for a trial given as a function.

    A module-level function of an importable module becomes its import path
    ``"package.module:function"`` (``local`` is None: workers import it by name). Any other
    callable (a lambda, a closure, a function of ``__main__``, a bound method) is *local*: its
    name is ``"<callable module.qualname>"`` (the trial's identity in the store) and it can run
    only in this process (``executor="inprocess"``).
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    if isinstance(module, str) and module != "__main__" and "<" not in qualname and "." not in qualname:
        path = f"{module}:{qualname}"
        try:
            if resolve_trial(path) is fn:
                return path, None
        except (ImportError, ValueError, TypeError):
            pass
    return f"<callable {module or '?'}.{qualname}>", fn


def _check_trial_path(path: Any) -> str:
    if isinstance(path, str) and _is_local_name(path):
        return path
    return check_import_path(path, "trial")


def _check_scalar(value: Any, where: str) -> Any:
    """A JSON scalar (str, bool, int, finite float, None); numpy scalars become Python ones."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and not math.isfinite(float(value)):
        fail(where, "finite", value)
    value = jsonable(value)
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            fail(where, "finite", value)
        return float(value)
    if isinstance(value, (list, dict)):
        # nested JSON (e.g. a task description) is allowed in the fixed config, checked for JSON-ability
        canonical_json(value)
        return value
    fail(where, "a JSON value (str, bool, int, float, None, list or dict)", value, TypeError)


@dataclass(frozen=True)
class SweepSpec:
    """A grid of trials.

    Parameters
    ----------
    trial : str or callable
        The trial function: its import path ``"package.module:function"``, or the function
        itself. A module-level function of an importable module is stored as its import path
        (it runs on any executor); a lambda, closure or ``__main__`` function is kept as is
        (see :attr:`function`) and runs only with ``executor="inprocess"``: workers of the
        local pool and Ray cannot receive it. Its identity in the store is its module and
        qualified name.
    base : mapping
        Config entries shared by every trial.
    grid : mapping of str to sequence
        Swept axes; the sweep is their Cartesian product (first axis slowest). Values must
        be JSON scalars; an axis may not also appear in ``base``.
    name : str
        A label for tables and plots; not part of the sweep's identity.

    Examples
    --------
    >>> spec = SweepSpec("lmech.sim.hp_trial:run_trial", base={"model": "mlp", "scheme": "mup", "steps": 100},
    ...                  grid={"width": [64, 256], "lr": [2.0**-8, 2.0**-7], "seed": [0]})
    >>> len(spec)
    4
    """

    trial: str | Callable[..., Any]
    base: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        local = None
        if callable(self.trial) and not isinstance(self.trial, str):
            path, local = trial_from_callable(self.trial)
            object.__setattr__(self, "trial", path)
        object.__setattr__(self, "_function", local)
        _check_trial_path(self.trial)
        if not isinstance(self.base, Mapping):
            fail("base", "a mapping of config keys to values", self.base, TypeError)
        if not isinstance(self.grid, Mapping):
            fail("grid", "a mapping of axis names to sequences of values", self.grid, TypeError)
        base = {}
        for k, v in self.base.items():
            if not isinstance(k, str):
                fail("base", "keyed by strings", k, TypeError)
            base[k] = _check_scalar(v, f"base[{k!r}]")
        grid: dict[str, tuple[Any, ...]] = {}
        for k, values in self.grid.items():
            if not isinstance(k, str):
                fail("grid", "keyed by strings", k, TypeError)
            if k in base:
                fail("grid", f"disjoint from `base` (axis {k!r} is in both)", k)
            if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
                fail(f"grid[{k!r}]", "a sequence of values", values, TypeError)
            vals = tuple(_check_scalar(v, f"grid[{k!r}]") for v in values)
            if not vals:
                fail(f"grid[{k!r}]", "non-empty", values)
            if len({canonical_json(v) for v in vals}) != len(vals):
                fail(f"grid[{k!r}]", "free of repeated values", values)
            grid[k] = vals
        if not isinstance(self.name, str):
            fail("name", "a string", self.name, TypeError)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "grid", grid)

    @property
    def function(self) -> Callable[..., Any] | None:
        """The trial callable when it cannot be imported by name (lambda, closure, ``__main__``);
        None for an import path."""
        return getattr(self, "_function", None)

    @property
    def trial_name(self) -> str:
        """``trial`` as stored: an import path, or ``"<callable module.qualname>"`` (always a string
        once the spec is built)."""
        return cast(str, self.trial)

    @property
    def local(self) -> bool:
        """The trial can run only in this process (``executor="inprocess"``)."""
        return _is_local_name(self.trial_name)

    # ------------------------------------------------------------------ trials
    def __len__(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n

    def configs(self) -> Iterator[dict[str, Any]]:
        """Every trial's config, first grid axis slowest."""
        axes = list(self.grid.items())

        def rec(i: int, partial: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if i == len(axes):
                yield {**self.base, **partial}
                return
            name, values = axes[i]
            for v in values:
                yield from rec(i + 1, {**partial, name: v})

        yield from rec(0, {})

    def trials(self) -> list[tuple[str, dict[str, Any]]]:
        """``[(trial_key, config), ...]`` in grid order."""
        return [(trial_key(self.trial_name, c), c) for c in self.configs()]

    @property
    def sweep_id(self) -> str:
        """Hash of the trial function and the sorted set of trial keys (order-free identity)."""
        keys = sorted(k for k, _ in self.trials())
        return hashlib.sha256(canonical_json({"trial": self.trial, "trials": keys}).encode()).hexdigest()[:20]

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "base": dict(self.base), "grid": {k: list(v) for k, v in self.grid.items()},
                "name": self.name}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SweepSpec":
        return cls(trial=d["trial"], base=d.get("base", {}), grid=d.get("grid", {}), name=d.get("name", ""))

    def describe_difference(self, other: "SweepSpec") -> str:
        """Human-readable summary of how ``other`` differs from this spec."""
        lines = []
        if self.trial != other.trial:
            lines.append(f"trial: {self.trial!r} -> {other.trial!r}")
        for k in sorted(set(self.base) | set(other.base)):
            a, b = self.base.get(k, "<absent>"), other.base.get(k, "<absent>")
            if a != b:
                lines.append(f"base[{k!r}]: {a!r} -> {b!r}")
        for k in sorted(set(self.grid) | set(other.grid)):
            a, b = self.grid.get(k), other.grid.get(k)
            if a is None or b is None or set(map(canonical_json, a)) != set(map(canonical_json, b)):
                lines.append(f"grid[{k!r}]: {list(a) if a else '<absent>'} -> {list(b) if b else '<absent>'}")
        return "; ".join(lines) if lines else "same trials"


def _positive_sizes(values: Any, name: str) -> list[int]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        fail(name, "a sequence of positive integers", values, TypeError)
    out = [check_int(v, name, lo=1) for v in values]
    if len(out) < 2:
        fail(name, "at least 2 sizes", values)
    if len(set(out)) != len(out):
        fail(name, "free of repeated sizes", values)
    return out


def transfer_spec(
    *,
    model: str,
    scheme: str,
    lrs: Sequence[float],
    widths: Sequence[int] | None = None,
    depths: Sequence[int] | None = None,
    seeds: Sequence[int] = (0,),
    steps: int = 200,
    trial: str | Callable[..., Any] = DEFAULT_TRIAL,
    name: str = "",
    **fixed: Any,
) -> SweepSpec:
    """The HP-transfer grid: size x LR x seed.

    Exactly one of ``widths`` / ``depths`` is swept; everything else in ``fixed`` (e.g.
    ``depth=2`` for a width sweep, ``batch_size``, ``base_width``, ``optimizer``) is held
    fixed, as the protocol requires (same steps, batch size and schedule at every size).
    Sizes are put largest first so the slowest trials start first.

    Parameters
    ----------
    model, scheme : str
        Passed to the trial function (e.g. ``"mlp"``, ``"mup"``).
    lrs : sequence of float
        Base learning rates (positive); analysis works in ``log2 lr``.
    widths, depths : sequence of int
        The size axis (>= 2 distinct sizes).
    seeds : sequence of int
        Seeds per (size, LR) point.
    steps : int
        Training steps per trial (fixed token budget across sizes).
    trial : str or callable
        Trial function: import path (default ``lmech.sim.hp_trial:run_trial``) or the
        function itself (see :class:`SweepSpec`).
    """
    if (widths is None) == (depths is None):
        raise ValueError("exactly one of `widths` and `depths` must be given")
    size_key = "width" if widths is not None else "depth"
    sizes = _positive_sizes(widths if widths is not None else depths, f"{size_key}s")
    if size_key in fixed:
        fail(size_key, f"swept (it is the size axis), not fixed", fixed[size_key])
    if isinstance(lrs, (str, bytes)) or not hasattr(lrs, "__iter__"):
        fail("lrs", "a sequence of positive numbers", lrs, TypeError)
    lr_values = [check_real(v, "lrs", lo=0.0, lo_closed=False) for v in lrs]
    if not lr_values:
        fail("lrs", "non-empty", lrs)
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        fail("seeds", "a sequence of non-negative integers", seeds, TypeError)
    seed_values = [check_int(s, "seeds", lo=0) for s in seeds]
    if not seed_values:
        fail("seeds", "non-empty", seeds)
    steps = check_int(steps, "steps", lo=1)
    base = {"model": model, "scheme": scheme, "steps": steps, **fixed}
    grid = {size_key: sorted(sizes, reverse=True), "lr": sorted(lr_values), "seed": seed_values}
    return SweepSpec(trial=trial, base=base, grid=grid, name=name or f"{model}/{scheme} {size_key} sweep")
