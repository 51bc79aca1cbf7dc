"""Draw claim panels (theory vs simulation) with matplotlib: inline SVG for the report.

Style: theory series are lines, simulation series markers (with error bars when the series
has ``yerr``), reference series dashed. Series whose labels share a stem (``"P=100 theory"``
and ``"P=100 sim"`` share ``"P=100"``) get one colour and one legend entry. Legends sit below
the axes, never over the data. Log axes get at most a handful of labelled ticks (minor tick
labels off), so labels cannot overlap.

Under each panel that pairs a theory series with a simulation series, a residual panel shows
``sim/theory - 1`` at the simulated x values (:func:`residuals`).
"""
from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmech.plotdata import Panel, Series
from lmech.report.mathtext import math_label

__all__ = ["render_panels", "render_panel_svg", "residuals", "Residual", "label_stem"]

_COLORS = ("#1f4e9c", "#c0392b", "#1b7837", "#7b3294", "#e08214", "#35978f", "#8c510a", "#4d4d4d",
           "#d6604d", "#4393c3")
_SUFFIXES = (" theory", " sim", " simulation", " (theory)", " (sim)", " (simulation)", " experiment",
             " (experiment)")
_RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "svg.fonttype": "none",  # text stays text: small files, searchable, crisp at any zoom
}


def label_stem(label: str) -> str:
    """A series label without its role suffix: ``"P=100 theory"`` -> ``"P=100"``."""
    for suffix in _SUFFIXES:
        if label.endswith(suffix):
            return label[: -len(suffix)]
    return label


# ----------------------------------------------------------------------------- residuals
@dataclass(frozen=True)
class Residual:
    """``sim/theory - 1`` for one theory/simulation pair, at the simulation's x values."""

    label: str  # the shared stem
    x: np.ndarray
    rel: np.ndarray  # sim / theory - 1
    err: np.ndarray | None  # yerr / |theory|, when the simulation has error bars


def _theory_at(theory: Series, xs: np.ndarray, xscale: str, yscale: str) -> np.ndarray:
    """Theory y at ``xs``: the value at an equal x, else interpolated inside its x range."""
    xt = np.asarray(theory.x, float)
    yt = np.asarray(theory.y, float)
    out = np.full(xs.shape, np.nan)
    order = np.argsort(xt)
    xt, yt = xt[order], yt[order]
    for i, x in enumerate(xs):
        same = np.flatnonzero(np.isclose(xt, x, rtol=1e-9, atol=0.0))
        if same.size:
            out[i] = yt[same[0]]
    missing = np.isnan(out) & (xs >= xt.min(initial=np.inf)) & (xs <= xt.max(initial=-np.inf))
    if missing.any() and xt.size >= 2:
        logx = xscale == "log" and np.all(xt > 0)
        logy = yscale == "log" and np.all(yt > 0)
        fx = np.log(xt) if logx else xt
        fy = np.log(yt) if logy else yt
        q = np.log(xs[missing]) if logx else xs[missing]
        v = np.interp(q, fx, fy)
        out[missing] = np.exp(v) if logy else v
    return out


def residuals(panel: Panel) -> list[Residual]:
    """Relative residuals of every simulation series against the theory with its label stem.

    Pairs are made by label (``"X theory"`` with ``"X sim"``), points by x: a simulated point
    uses the theory value at the same x, or the theory interpolated (log-log on log axes)
    when its x lies inside the theory's range; other points and points where the theory is
    zero or not finite are left out. Stems without both roles give no residual.
    """
    theories: dict[str, Series] = {}
    for s in panel.series:
        if s.role == "theory":
            theories.setdefault(label_stem(s.label), s)
    out: list[Residual] = []
    for s in panel.series:
        if s.role != "simulation":
            continue
        stem = label_stem(s.label)
        theory = theories.get(stem)
        if theory is None or not theory.x:
            continue
        xs = np.asarray(s.x, float)
        ys = np.asarray(s.y, float)
        yt = _theory_at(theory, xs, panel.xscale, panel.yscale)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = ys / yt - 1.0
            err = None if s.yerr is None else np.asarray(s.yerr, float) / np.abs(yt)
        keep = np.isfinite(rel) & (yt != 0)
        if not keep.any():
            continue
        out.append(Residual(stem, xs[keep], rel[keep], None if err is None else err[keep]))
    return out


# ----------------------------------------------------------------------------- axes
def _tidy_log(axis, lo: float, hi: float) -> None:
    """Few, non-overlapping labels on a log axis spanning ``[lo, hi]``."""
    from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter

    if not (lo > 0 and hi > lo and math.isfinite(hi)):
        return
    decades = math.log10(hi / lo)
    axis.set_minor_formatter(NullFormatter())
    if decades >= 2.2:
        axis.set_major_locator(LogLocator(base=10, numticks=6))
        axis.set_major_formatter(LogFormatterSciNotation(base=10))
        axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
    else:
        # up to ~two decades: 1-2-5 ticks with plain numbers (at most ~7 labels)
        subs = (1.0, 2.0, 5.0) if decades >= 0.5 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
        axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: _plain(v)))
        axis.set_minor_locator(LogLocator(base=10, subs=np.arange(1, 10), numticks=12))


def _plain(v: float) -> str:
    if v == 0:
        return "0"
    text = f"{v:.3g}"
    return re.sub(r"e([+-])0*(\d+)", lambda m: f"e{'' if m.group(1) == '+' else '-'}{m.group(2)}", text)


def _style_axes(ax, panel: Panel, *, x: bool = True) -> None:
    ax.grid(alpha=0.25, which="major", lw=0.6)
    ax.grid(alpha=0.1, which="minor", lw=0.4)
    if panel.yscale == "log":
        _tidy_log(ax.yaxis, *ax.get_ylim())
    if x and panel.xscale == "log":
        _tidy_log(ax.xaxis, *ax.get_xlim())
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw(ax, panel: Panel, math_label=math_label) -> tuple[dict[str, str], list, list]:
    """Plot ``panel`` on ``ax``; return stem colours and (handles, labels) for one legend."""
    colors: dict[str, str] = {}
    handles: dict[str, list] = {}
    n_stems = len({label_stem(s.label) for s in panel.series})
    for s in panel.series:
        stem = label_stem(s.label)
        color = colors.setdefault(stem, _COLORS[len(colors) % len(_COLORS)])
        if s.role == "simulation":
            if s.yerr is not None:
                h = ax.errorbar(s.x, s.y, yerr=s.yerr, fmt="o", ms=5.5, mew=0.7, mec="white", capsize=2,
                                elinewidth=1, color=color, zorder=3)
            else:
                (h,) = ax.plot(s.x, s.y, "o", ms=5.5, mew=0.7, mec="white", color=color, zorder=3)
        elif s.role == "reference":
            ref_color = color if n_stems > 1 or len(panel.series) == 1 else "0.35"
            (h,) = ax.plot(s.x, s.y, "--", lw=1.2, color=ref_color, zorder=1)
        else:
            (h,) = ax.plot(s.x, s.y, "-", lw=1.6, color=color, zorder=2)
        handles.setdefault(stem, []).append((s.role, h, math_label(s.label)))
    ax.set_xscale(panel.xscale)
    ax.set_yscale(panel.yscale)
    ax.set_ylabel(math_label(panel.ylabel))
    legend_handles, legend_labels = [], []
    for stem, items in handles.items():
        roles = [r for r, _, _ in items]
        if len(items) > 1 and len(set(roles)) > 1:
            legend_handles.append(tuple(h for _, h, _ in items))
            legend_labels.append(math_label(stem))
        else:
            for _, h, label in items:
                legend_handles.append(h)
                legend_labels.append(label)
    return colors, legend_handles, legend_labels


def _dodge(x: np.ndarray, k: int, n: int, scale: str, lim: tuple[float, float]) -> np.ndarray:
    """Shift the ``k``-th of ``n`` residual series sideways (1 % of the axis each) so bars at
    one x do not hide each other; the shift is drawn only, never stored."""
    if n <= 1:
        return x
    step = (k - (n - 1) / 2) * 0.01
    lo, hi = lim
    if scale == "log" and lo > 0 and hi > lo:
        return x * (hi / lo) ** step
    return x + step * (hi - lo)


def _figure(panel: Panel, *, width: float = 5.0, use_mathtext: bool = True):
    """A matplotlib figure for one panel: main axes, residual axes when pairs exist, legend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.legend_handler import HandlerTuple
    from matplotlib.ticker import PercentFormatter

    label = math_label if use_mathtext else str
    res = residuals(panel)
    n_legend = len({label_stem(s.label) for s in panel.series}) or 1
    ncol = min(3, n_legend)
    legend_rows = math.ceil(n_legend / ncol) if panel.series else 0
    height = (3.0 if res else 2.7) + (0.95 if res else 0.0) + 0.22 * legend_rows + 0.15
    fig = plt.figure(figsize=(width, height), layout="constrained")
    if res:
        gs = fig.add_gridspec(2, 1, height_ratios=(3.0, 1.0))
        ax = fig.add_subplot(gs[0])
        rax = fig.add_subplot(gs[1], sharex=ax)
    else:
        ax, rax = fig.add_subplot(1, 1, 1), None
    colors, handles, labels = _draw(ax, panel, label)
    if rax is not None:
        rax.axhline(0.0, color="0.3", lw=0.8)
        for k, r in enumerate(res):
            c = colors.get(r.label, "0.3")
            x = _dodge(r.x, k, len(res), panel.xscale, ax.get_xlim())
            if r.err is not None:
                rax.errorbar(x, r.rel, yerr=r.err, fmt="o", ms=4, mew=0.6, mec="white", capsize=1.5,
                             elinewidth=0.8, color=c)
            else:
                rax.plot(x, r.rel, "o", ms=4, mew=0.6, mec="white", color=c)
        rax.set_ylabel("sim/theory − 1", fontsize=8)
        rax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4, symmetric=True))
        lo, hi = rax.get_ylim()
        rax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0 if hi - lo >= 0.06 else 1))
        rax.set_xlabel(label(panel.xlabel))
        ax.tick_params(labelbottom=False)
        _style_axes(ax, panel, x=False)
        _style_axes(rax, Panel("", "", "", (), panel.xscale, "linear"))
    else:
        ax.set_xlabel(label(panel.xlabel))
        _style_axes(ax, panel)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False,
                   handler_map={tuple: HandlerTuple(ndivide=None, pad=0.6)}, handlelength=2.6,
                   columnspacing=1.4)
    return fig


def render_panel_svg(panel: Panel, *, salt: str = "lmech") -> str:
    """One panel as an ``<svg>`` element (no XML prologue), ready to inline in HTML.

    ``salt`` seeds the element ids matplotlib writes, so two figures on one page never share
    an id and the same input gives the same SVG.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({**_RC, "svg.hashsalt": salt}):
        for use_math in (True, False):  # a label mathtext cannot parse: draw the labels as typed
            fig = _figure(panel, use_mathtext=use_math)
            buf = io.StringIO()
            try:
                fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
                break
            except ValueError:
                if not use_math:
                    raise
            finally:
                plt.close(fig)
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:] if start >= 0 else text
    # let CSS size the figure: drop the fixed size, keep the viewBox
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="fig" role="img"', svg, count=1)


def render_panels(panels: Sequence[Panel], *, title: str = "", dpi: int = 150) -> bytes:
    """Draw ``panels`` side by side (up to three per row) and return PNG bytes (for files)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.legend_handler import HandlerTuple

    if dpi < 1:
        raise ValueError(f"`dpi` must be positive; got {dpi!r}")
    n = max(1, len(panels))
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    with matplotlib.rc_context(_RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.8 * ncols, 4.0 * nrows), squeeze=False,
                                 layout="constrained")
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        for ax, panel in zip(axes.ravel(), panels):
            _, handles, labels = _draw(ax, panel)
            ax.set_xlabel(math_label(panel.xlabel))
            ax.set_title(math_label(panel.title))
            _style_axes(ax, panel)
            if handles:
                ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2,
                          frameon=False, handler_map={tuple: HandlerTuple(ndivide=None, pad=0.6)})
        if title:
            fig.suptitle(title)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
    return buf.getvalue()
