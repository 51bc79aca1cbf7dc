"""Typed result objects returned by every solver.

Every theory solver returns a frozen dataclass deriving from :class:`SolverResult`, so the
fields ``converged``, ``iterations``, ``residual`` and ``message`` are always present
(SciPy's lesson: open result dicts drift). Solver-specific payload fields are declared on
the subclass; ``extras`` holds anything diagnostic that is not part of the contract.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SolverResult", "LmechWarning", "ConvergenceWarning", "warn_not_converged"]


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
        True when the solver met its tolerance everywhere it was asked to.
    iterations : int
        Iterations (or function evaluations, per solver docstring) used; the maximum over a
        vectorised batch.
    residual : float
        Final residual of the equation solved, in the solver's stated norm (max over a batch).
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

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # Put the aligned repr in the subclass's own namespace so @dataclass (which never
        # overwrites an attribute defined in the class body) keeps it.
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = SolverResult.__repr__

    def __repr__(self) -> str:
        base = [f.name for f in dataclasses.fields(SolverResult)]
        names = [f.name for f in dataclasses.fields(self) if f.name not in base] + base
        width = max(len(n) for n in names)
        lines = [f"{type(self).__name__}("]
        for n in names:
            lines.append(f"  {n.rjust(width)}: {_describe(getattr(self, n))}")
        lines.append(")")
        return "\n".join(lines)
