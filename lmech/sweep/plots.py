"""Figures of an HP-transfer sweep: the standard muTransfer figure.

Left: seed-mean loss vs ``log2 lr``, one line per size (diverged points drawn as crosses
on the top edge). Right: ``log2 lr*`` vs ``log2 size`` with the bootstrap intervals.
matplotlib is imported only when a figure is drawn.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from lmech.plotdata import Panel, Series
from lmech.sweep.analysis import TransferAnalysis

__all__ = ["plot_transfer", "transfer_panels"]





def transfer_panels(analyses: TransferAnalysis | Mapping[str, TransferAnalysis], name: str = "") -> list[Panel]:
    """Claim panels (:class:`lmech.claims.Panel`): loss vs ``log2 lr`` per size for each
    analysis, then one panel of ``log2 lr*`` vs ``log2 size`` for all of them (half-width
    interval bars) with the +-``shift_tol`` band around the first one's base optimum.

    ``analyses`` is one analysis (labelled ``name``) or a mapping of names to analyses.
    """
    items = {name: analyses} if isinstance(analyses, TransferAnalysis) else dict(analyses)
    panels = []
    for label, a in items.items():
        prefix = f"{label}: " if label else ""
        curves = []
        for s, size in enumerate(a.sizes):
            y = a.mean_loss[s]
            keep = np.isfinite(y)
            if not keep.any():
                continue
            err = np.nan_to_num(a.std_loss[s][keep], nan=0.0)
            curves.append(Series(f"{a.size_key} {size:g}", a.log2_hp[keep], y[keep], yerr=err, role="simulation"))
        panels.append(Panel(f"{prefix}{a.metric} vs log2 {a.hp_key}", f"log2 {a.hp_key}", a.metric, tuple(curves)))
    series = []
    for label, a in items.items():
        x_star = a.log2_lr_star
        ok = np.isfinite(x_star)
        lo = np.array([o.interval[0] for o in a.optima])
        hi = np.array([o.interval[1] for o in a.optima])
        half = np.nan_to_num(np.maximum(x_star - lo, hi - x_star), nan=0.0)
        series.append(Series(f"{label or 'optimum'} sim", np.log2(a.sizes[ok]), x_star[ok], yerr=half[ok],
                             role="simulation"))
    first = next(iter(items.values()))
    if np.isfinite(first.log2_lr_star[first.base_index]):
        base = first.log2_lr_star[first.base_index]
        tol = first.thresholds["shift_tol"]
        xs = np.log2(first.sizes[[0, -1]])
        series.append(Series(f"base +{tol:g}", xs, [base + tol] * 2, role="reference"))
        series.append(Series(f"base -{tol:g}", xs, [base - tol] * 2, role="reference"))
    panels.append(Panel(f"optimal log2 {first.hp_key} vs {first.size_key}", f"log2 {first.size_key}",
                        f"log2 {first.hp_key}*", tuple(series)))
    return panels


def plot_transfer(analyses: TransferAnalysis | Sequence[TransferAnalysis], path: str | os.PathLike[str] | None = None,
                  *, names: Sequence[str] | None = None, title: str = ""):
    """Draw the muTransfer figure for one or several analyses (e.g. muP and SP).

    Parameters
    ----------
    analyses : TransferAnalysis or sequence of them
        One loss-vs-LR panel each, plus one shared panel of ``log2 lr*`` vs size.
    path : path, optional
        Save the figure there (PNG/PDF by extension).
    names : sequence of str, optional
        Legend names of the analyses (e.g. the schemes).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    items = [analyses] if isinstance(analyses, TransferAnalysis) else list(analyses)
    names = list(names) if names is not None else [""] * len(items)
    n = len(items)
    fig, axes = plt.subplots(1, n + 1, figsize=(4.6 * (n + 1), 3.6), squeeze=False)
    axes = axes[0]
    cmap = plt.get_cmap("viridis")
    for ax, a, name in zip(axes[:-1], items, names):
        finite = a.mean_loss[np.isfinite(a.mean_loss)]
        top = None
        if finite.size:
            lo_v, hi_v = float(finite.min()), float(np.quantile(finite, 0.9))
            top = hi_v + 0.15 * max(hi_v - lo_v, 1e-12)
        for s, size in enumerate(a.sizes):
            color = cmap(s / max(1, len(a.sizes) - 1))
            y = a.mean_loss[s]
            keep = np.isfinite(y)
            ax.errorbar(a.log2_hp[keep], y[keep], yerr=np.nan_to_num(a.std_loss[s][keep]), color=color, marker="o",
                        ms=3, lw=1.4, capsize=2, label=f"{a.size_key} {size:g}")
            if top is not None and (~keep & np.isinf(y)).any():
                ax.plot(a.log2_hp[np.isinf(y)], [top] * int(np.isinf(y).sum()), "x", color=color, ms=6)
            o = a.optima[s]
            if np.isfinite(o.log2_lr):
                ax.axvline(o.log2_lr, color=color, lw=0.6, ls=":")
        if top is not None:
            ax.set_ylim(top=top * 1.02 if top > 0 else top)
        ax.set_xlabel(f"log2 {a.hp_key}")
        ax.set_ylabel(a.metric)
        ax.set_title(f"{name + ': ' if name else ''}{a.metric} vs log2 {a.hp_key}", fontsize=9)
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(fontsize=7, frameon=False)
    ax = axes[-1]
    first = items[0]
    if np.isfinite(first.log2_lr_star[first.base_index]):
        base, tol = first.log2_lr_star[first.base_index], first.thresholds["shift_tol"]
        ax.axhspan(base - tol, base + tol, color="0.85", alpha=0.5, lw=0,
                   label=f"{names[0] + ' ' if names[0] else ''}base optimum +-{tol:g}")
    for i, (a, name) in enumerate(zip(items, names)):
        x_star = a.log2_lr_star
        lo = np.array([o.interval[0] for o in a.optima])
        hi = np.array([o.interval[1] for o in a.optima])
        ok = np.isfinite(x_star)
        yerr = np.vstack([np.nan_to_num(x_star - lo), np.nan_to_num(hi - x_star)])[:, ok]
        ax.errorbar(np.log2(a.sizes[ok]), x_star[ok], yerr=np.clip(yerr, 0, None), marker="o", capsize=3,
                    label=f"{name or 'optimum'} (slope {a.slope:+.2f})", color=f"C{i}")
    ax.set_xlabel(f"log2 {items[0].size_key}")
    ax.set_ylabel(f"log2 {items[0].hp_key}*")
    ax.set_title(f"optimal log2 {items[0].hp_key} ({int(round(100 * items[0].confidence))}% bootstrap interval)",
                 fontsize=9)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
