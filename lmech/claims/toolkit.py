"""The shared toolkit every claim is written with, so that a claim reads in a minute.

* :func:`compare` / :class:`Comparison` - theory against simulation on one panel: each
  :meth:`Comparison.add` draws the theory as a line and the simulation as markers with
  error bars, and returns the per-point relative error (the denominator is named:
  ``denominator="theory"`` divides by the theory, ``"sim"`` by the simulation);
  :meth:`Comparison.show` draws such a pair unscored; :meth:`Comparison.outcome` turns the
  collected errors into a :class:`ClaimOutcome`, :func:`outcome` those of several comparisons.
* :func:`width_slope` - the fitted log-log slope of an error against width (or any size),
  with a reference ``size^slope`` series for the panel (:func:`slope_panel`).
* :func:`one_thread` - run a block with one torch intra-op thread (many small batched ops).
* Re-exported: :class:`~lmech.seeds.SeedStream`, the metrics of :mod:`lmech.metrics`,
  :func:`~lmech.fits.fit_power_law`, :func:`~lmech.spectra.power_law_problem`,
  :class:`~lmech.plotdata.Panel` and :class:`~lmech.plotdata.Series`.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmech.claims.registry import ClaimOutcome, Setting, Tolerance, claim, fragile, known_failure
from lmech.fits import PowerLawFit, fit_power_law
from lmech.metrics import abs_err, log_ratio, norm_rel_err_theory, rel_err_sim, rel_err_theory
from lmech.plotdata import Panel, Series
from lmech.seeds import SeedStream
from lmech.spectra import power_law_problem

__all__ = [
    "Comparison", "compare", "outcome", "width_slope", "slope_panel", "one_thread", "sem",
    "ClaimOutcome", "Setting", "Tolerance", "claim", "fragile", "known_failure",
    "SeedStream", "Panel", "Series", "PowerLawFit", "fit_power_law", "power_law_problem",
    "rel_err_theory", "rel_err_sim", "norm_rel_err_theory", "abs_err", "log_ratio",
]

_ERRORS = {"theory": rel_err_theory, "sim": rel_err_sim, "absolute": abs_err, "log": log_ratio}


def sem(samples, axis: int = 0) -> np.ndarray:
    """Standard error of the mean along ``axis`` (ddof 1; zeros for a single sample)."""
    a = np.asarray(samples, dtype=np.float64)
    n = a.shape[axis]
    if n < 2:
        return np.zeros(np.delete(a.shape, axis))
    return a.std(axis=axis, ddof=1) / np.sqrt(n)


@dataclass
class Comparison:
    """Theory-vs-simulation curves on one panel, with the per-point errors of each pair.

    Parameters
    ----------
    title, xlabel, ylabel : str
        Panel text.
    xscale, yscale : {"log", "linear"}
    denominator : {"theory", "sim", "absolute", "log"}
        The error of each point: ``|sim - theory| / |theory|``, ``/ |sim|``, the absolute
        difference, or ``|log(sim / theory)|``.
    """

    title: str
    xlabel: str
    ylabel: str
    xscale: str = "log"
    yscale: str = "log"
    denominator: str = "theory"
    series: list[Series] = field(default_factory=list)
    errors_by_label: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.denominator not in _ERRORS:
            raise ValueError(f"`denominator` must be one of {sorted(_ERRORS)}; got {self.denominator!r}")

    def add(self, label: str, x, theory, sim, sim_err=None, *, x_sim=None) -> np.ndarray:
        """Draw one theory line and its simulation points; return their per-point errors.

        ``x_sim`` gives the simulation its own x (then ``sim`` must already be at the
        theory's points for the error; use it only to draw, e.g. window centres).
        """
        self.show(label, x, theory, sim, sim_err, x_sim=x_sim)
        err = np.atleast_1d(_ERRORS[self.denominator](theory, sim))
        self.errors_by_label[label or f"curve {len(self.errors_by_label)}"] = err
        return err

    def show(self, label: str, x, theory, sim, sim_err=None, *, x_sim=None) -> None:
        """Draw a theory line and its simulation points as :meth:`add` does, without scoring them."""
        prefix = f"{label} " if label else ""
        self.series.append(Series(f"{prefix}theory", x, theory, role="theory"))
        self.series.append(Series(f"{prefix}sim", x if x_sim is None else x_sim, sim, yerr=sim_err, role="simulation"))

    def reference(self, label: str, x, y) -> None:
        """A dashed reference line (a predicted slope, a bound)."""
        self.series.append(Series(label, x, y, role="reference"))

    def draw(self, label: str, x, y, yerr=None, *, role: str = "simulation") -> None:
        """One more series drawn on the panel but not scored (context, a control)."""
        self.series.append(Series(label, x, y, yerr=yerr, role=role))

    @property
    def errors(self) -> np.ndarray:
        """Every per-point error added so far, concatenated."""
        if not self.errors_by_label:
            return np.zeros(0)
        return np.concatenate([e.ravel() for e in self.errors_by_label.values()])

    @property
    def panel(self) -> Panel:
        return Panel(self.title, self.xlabel, self.ylabel, tuple(self.series), self.xscale, self.yscale)

    def outcome(self, reduce: str = "mean", *, checks: dict[str, bool] | None = None,
                details: dict[str, Any] | None = None, panels: Sequence[Panel] = ()) -> ClaimOutcome:
        """A :class:`ClaimOutcome` whose value is the mean (or max) of :attr:`errors`.

        The per-curve errors go into ``details["errors"]``; extra ``panels`` follow this one.
        """
        return outcome(self, reduce=reduce, checks=checks, details=details, panels=panels)


def outcome(*comparisons: Comparison, reduce: str = "mean", checks: dict[str, bool] | None = None,
            details: dict[str, Any] | None = None, panels: Sequence[Panel] = ()) -> ClaimOutcome:
    """One :class:`ClaimOutcome` over several comparisons: the mean (or max) of all their errors.

    The panels are the comparisons' in order, then ``panels``; ``details["errors"]`` holds every
    comparison's per-curve errors (a label repeated in a later comparison replaces the earlier one's).
    """
    if reduce not in ("mean", "max"):
        raise ValueError(f"`reduce` must be 'mean' or 'max'; got {reduce!r}")
    if not comparisons:
        raise ValueError("`comparisons`: give at least one Comparison")
    err = np.concatenate([c.errors for c in comparisons])
    value = float(err.mean() if reduce == "mean" else err.max()) if err.size else float("nan")
    errors = {k: v.tolist() for c in comparisons for k, v in c.errors_by_label.items()}
    return ClaimOutcome(value, [*(c.panel for c in comparisons), *panels], dict(checks or {}),
                        {"errors": errors, **(details or {})})


def compare(label: str, x, theory, sim, sim_err=None, *, title: str, xlabel: str, ylabel: str,
            xscale: str = "log", yscale: str = "log", denominator: str = "theory") -> Comparison:
    """A :class:`Comparison` holding one theory/simulation pair (add more with ``.add``)."""
    cmp = Comparison(title, xlabel, ylabel, xscale, yscale, denominator)
    cmp.add(label, x, theory, sim, sim_err)
    return cmp


def width_slope(sizes, errors) -> float:
    """Least-squares slope of ``log(error)`` against ``log(size)`` (e.g. -0.5 for N^-1/2)."""
    return fit_power_law(np.asarray(sizes, dtype=float), np.asarray(errors, dtype=float)).slope


def slope_panel(title: str, xlabel: str, ylabel: str, sizes, errors, *, errors_err=None,
                reference_slope: float | None = None, label: str = "sim") -> Panel:
    """Errors against size on log-log axes, with an optional ``size^slope`` reference line."""
    sizes = np.asarray(sizes, dtype=float)
    errors = np.asarray(errors, dtype=float)
    series = [Series(label, sizes, errors, yerr=errors_err, role="simulation")]
    if reference_slope is not None:
        series.append(Series(f"slope {reference_slope:g}", sizes, errors[0] * (sizes / sizes[0]) ** reference_slope,
                             role="reference"))
    return Panel(title, xlabel, ylabel, tuple(series), "log", "log")


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread (fastest for many small batched ops)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
