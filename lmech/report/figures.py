"""Render claim panels (theory vs simulation) to PNG with matplotlib."""
from __future__ import annotations

import io
import math
from collections.abc import Sequence

from lmech.plotdata import Panel

__all__ = ["render_panels"]

_THEORY_COLORS = ("#1f4e9c", "#b2182b", "#1b7837", "#762a83", "#e08214", "#35978f", "#8c510a", "#4d4d4d")


def render_panels(panels: Sequence[Panel], *, title: str = "", dpi: int = 90) -> bytes:
    """Draw ``panels`` side by side (up to three per row) and return PNG bytes.

    Series sharing a label stem get the same colour, so a theory line and its simulation
    markers read as a pair: labels ``"P=100 theory"``/``"P=100 sim"`` share ``"P=100"``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = max(1, len(panels))
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.5 * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax, panel in zip(axes.ravel(), panels):
        _draw(ax, panel)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def _stem(label: str) -> str:
    for suffix in (" theory", " sim", " simulation", " (theory)", " (sim)", " (simulation)"):
        if label.endswith(suffix):
            return label[: -len(suffix)]
    return label


def _draw(ax, panel: Panel) -> None:
    colors: dict[str, str] = {}
    for s in panel.series:
        color = colors.setdefault(_stem(s.label), _THEORY_COLORS[len(colors) % len(_THEORY_COLORS)])
        if s.role == "simulation":
            if s.yerr is not None:
                ax.errorbar(s.x, s.y, yerr=s.yerr, fmt="o", ms=4, capsize=2, color=color, label=s.label)
            else:
                ax.plot(s.x, s.y, "o", ms=4, color=color, label=s.label)
        elif s.role == "reference":
            ax.plot(s.x, s.y, "--", lw=1, color="0.4" if len(panel.series) > 1 else color, label=s.label)
        else:
            ax.plot(s.x, s.y, "-", lw=1.6, color=color, label=s.label)
    ax.set_xscale(panel.xscale)
    ax.set_yscale(panel.yscale)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.set_title(panel.title, fontsize=9)
    ax.grid(alpha=0.3, which="both", lw=0.5)
    if panel.series:
        ax.legend(fontsize=7, frameon=False)
