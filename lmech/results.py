"""Typed result objects returned by every solver.

Every theory solver returns a frozen dataclass deriving from :class:`SolverResult`, so the
fields ``converged``, ``status``, ``iterations``, ``residual`` and ``message`` are always
present (SciPy's lesson: open result dicts drift). Solver-specific payload fields are declared
on the subclass; ``extras`` holds anything diagnostic that is not part of the contract.

The contract
------------
``status`` says how the result was obtained, one of :data:`STATUSES`:

``"converged"``
    An iterative solver met its tolerance. ``converged=True``.
``"closed_form"``
    No tolerance was involved: a formula, or an exact finite recursion (time stepping of a
    closed set of equations, a quadrature or integrator of fixed order without an error
    check). ``converged=True``. For these ``iterations`` counts the steps evaluated
    (recursion or time steps, quadrature nodes; 0 for a plain formula) and ``residual`` is the solver's own error measure of the answer when it
    computes one (the residual of a check of the answer against its equation, or a
    Monte-Carlo standard error, as its docstring says), else NaN, never a made-up 0.
``"max_iter"``
    The solver stopped without meeting its tolerance: its iteration cap was hit, or an inner
    solver, fit or continuation failed (``message`` says which). ``converged=False``.
``"diverged"``
    The iteration or the dynamics blew up (non-finite or exploding values); payload arrays may
    hold ``inf`` or stop early, per the solver docstring. ``converged=False``.

A solver warns :class:`ConvergenceWarning` exactly when ``converged`` is False. Constructors
that pass only ``converged=`` get ``status="converged"`` or ``"max_iter"``.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SolverResult", "STATUSES", "LmechWarning", "ConvergenceWarning", "warn_not_converged"]

#: Allowed values of :attr:`SolverResult.status` (see the module docstring).
STATUSES = ("converged", "max_iter", "diverged", "closed_form")
_CONVERGED_STATUSES = ("converged", "closed_form")


class LmechWarning(UserWarning):
    """Base class of lmech's warnings."""


class ConvergenceWarning(LmechWarning):
    """A solver stopped without meeting its tolerance; the result says ``converged=False``."""


def warn_not_converged(where: str, message: str) -> None:
    warnings.warn(f"{where}: {message}", ConvergenceWarning, stacklevel=3)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return np.array2string(value, precision=4)
        return f"array(shape={value.shape}, dtype={value.dtype})"
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # torch tensors
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return "{" + ", ".join(sorted(map(str, value))) + "}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, kw_only=True)
class SolverResult:
    """Fields shared by every solver result.

    Attributes
    ----------
    converged : bool
        True when the solver met its tolerance everywhere it was asked to, or when the result
        is exact (``status="closed_form"``).
    status : str
        One of :data:`STATUSES`: ``"converged"``, ``"closed_form"`` (both with
        ``converged=True``), ``"max_iter"`` or ``"diverged"`` (both with ``converged=False``).
        When not given it is derived: ``"converged"`` if ``converged`` else ``"max_iter"``.
    iterations : int
        Iterations (or function evaluations, per solver docstring) used; the maximum over a
        vectorised batch. For closed forms: steps evaluated, 0 for a plain formula.
    residual : float
        Final residual of the equation solved, in the solver's stated norm (max over a batch);
        NaN where the solver has none to report (e.g. a bounded 1-d minimisation). For closed
        forms: the solver's checked residual or Monte-Carlo error, else NaN.
    message : str
        Human-readable status; says what went wrong when ``converged`` is False.
    extras : dict
        Solver-specific diagnostics that are not part of the typed contract.
    """

    converged: bool
    iterations: int
    residual: float
    message: str = ""
    extras: dict = field(default_factory=dict)
    status: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.converged, (bool, np.bool_)):
            raise TypeError(f"converged must be a bool, got {self.converged!r}")
        converged = bool(self.converged)
        object.__setattr__(self, "converged", converged)
        status = self.status
        if status is None:
            status = "converged" if converged else "max_iter"
            object.__setattr__(self, "status", status)
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if converged != (status in _CONVERGED_STATUSES):
            raise ValueError(
                f"status={status!r} contradicts converged={converged}: 'converged' and 'closed_form' "
                "require converged=True, 'max_iter' and 'diverged' require converged=False"
            )

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # Put the aligned repr in the subclass's own namespace so @dataclass (which never
        # overwrites an attribute defined in the class body) keeps it.
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = SolverResult.__repr__  # type: ignore[method-assign]

    def __repr__(self) -> str:
        base = ["converged", "status", "iterations", "residual", "message", "extras"]
        names = [f.name for f in dataclasses.fields(self) if f.name not in base] + base
        width = max(len(n) for n in names)
        lines = [f"{type(self).__name__}("]
        for n in names:
            lines.append(f"  {n.rjust(width)}: {_describe(getattr(self, n))}")
        lines.append(")")
        return "\n".join(lines)
