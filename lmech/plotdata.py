"""Plot data: what a claim or a sweep wants drawn, as plain frozen data.

:class:`Series` is one line or set of points, :class:`Panel` one subplot. Both serialise
to JSON (``to_dict``/``from_dict``) so the report can redraw them from the store without
the code that made them. Base layer: imports nothing of lmech.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

__all__ = ["Series", "Panel"]


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

    if TYPE_CHECKING:  # what the constructor accepts; __post_init__ stores tuples of floats
        def __init__(self, label: str, x: Any, y: Any, yerr: Any = None, role: str = "theory") -> None: ...

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

    if TYPE_CHECKING:  # any iterable of series; __post_init__ stores a tuple
        def __init__(self, title: str, xlabel: str, ylabel: str, series: Iterable[Series],
                     xscale: str = "linear", yscale: str = "linear") -> None: ...

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
