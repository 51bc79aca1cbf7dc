"""Claims: the coordinate check of the muP family (width) and of depth-muP / CompleteP (depth).

Each claim runs :func:`lmech.sim.coord_check.coord_check` for the scheme and its negative controls.
The "theory": every activation size and change since initialisation is width-independent (muP) or
depth-independent (1/sqrt(L) or 1/L residual branches). The check must also separate: SP and NTP
(width) or muP without depth scaling (depth) reach ``|slope| >= 0.4``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lmech.claims.toolkit import ClaimOutcome, Panel, SeedStream, Series, Setting, Tolerance, claim, one_thread
from lmech.sim.coord_check import coord_check

TP5 = "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer"
DEPTH = "Depthwise Hyperparameter Transfer in Residual Networks: Dynamics and Scaling Limit"
CP = "Don't be lazy: CompleteP enables compute-efficient deep transformers"
GPT = "Infinite Limits of Multi-head Transformer Dynamics"
LABEL = {"sp": "SP", "ntp": "NTP", "mup": "muP", "depth_mup": "depth-muP", "completep": "CompleteP"}
METRIC = "max |log2-log2 slope| of activation size and change since init (largest 4 grid points)"

@dataclass(frozen=True)
class Coord(Setting):
    """A coordinate check: ``widths`` (width axis) or ``depths`` (depth axis), ``n_seeds`` inits."""
    model: str = "mlp"
    scheme: str = "mup"
    optimizer: str = "adam"
    widths: tuple[int, ...] | None = (64, 128, 256, 512)
    depths: tuple[int, ...] | None = None
    width: int = 128
    steps: int = 4
    n_seeds: int = 3
    plot: str = "layers.1"  # the quantity drawn

def _coord(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    with one_thread():  # small matrices: intra-op threads cost up to 100x on a busy machine (measured)
        r = coord_check(s.model, s.scheme, widths=s.widths, depths=s.depths, width=s.width, steps=s.steps,
                        seeds=s.n_seeds, optimizer=s.optimizer, seed=seeds.next())
    t, q = r.steps, s.plot if s.plot in r.quantities else r.quantities[-1]
    series = []
    for sc in [r.scheme, *r.controls]:
        err = [row["std"] / r.seeds**0.5 for row in r.rows
               if (row["scheme"], row["quantity"], row["stat"], row["t"]) == (sc, q, "delta", t)]
        series.append(Series(f"{LABEL[sc]} sim", r.grid, r.means(sc, q, "delta", t), yerr=err, role="simulation"))
    series.append(Series(f"{LABEL[r.scheme]} theory", r.grid, [r.means(r.scheme, q, "delta", t)[0]] * len(r.grid),
                         role="reference"))
    panel = Panel(f"{q}: change since init after {t} steps", r.axis, "RMS(h_t - h_0)", tuple(series), "log", "log")
    worst = {qq: max(abs(v) for stat in ("size", "delta") for v in r.slopes[r.scheme][qq][stat].values())
             for qq in r.quantities}
    return ClaimOutcome(r.max_abs_slope, [panel], checks={
        f"control {LABEL[c]} separates (|slope| >= {r.separation:g})": v >= r.separation
        for c, v in r.control_max_slope.items()}, details={
        "axis": r.axis, "grid": r.grid, "verdict": r.verdict, "violations": r.violations[:20],
        "control_max_slope": r.control_max_slope, "max_abs_slope_by_quantity": worst,
        "full_grid_slope_of_plotted": r.full_slopes[r.scheme][q]["delta"][t], "lr": r.lr,
        "zero_readout": r.zero_readout, "seconds": r.seconds})

MLP_FULL: dict[str, Any] = dict(widths=(64, 128, 256, 512, 1024, 2048), steps=5, n_seeds=5)

@claim("param.coord_check.width.mlp_adam", paper=TP5, metric=METRIC, tolerance=0.1,
       quick=Coord(n_seeds=5), full=Coord(**MLP_FULL))
def mlp_adam_width(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    """Under muP with Adam, every layer's activation size and its change since initialisation are
    width-independent (3-layer ReLU MLP on MNIST-1D), while SP and NTP drift with width."""
    return _coord(s, seeds)

@claim("param.coord_check.width.mlp_sgd", paper=TP5, metric=METRIC, tolerance=0.1,
       quick=Coord(optimizer="sgd", n_seeds=5), full=Coord(optimizer="sgd", **MLP_FULL))
def mlp_sgd_width(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    """Under muP with SGD (Table 8 form), every layer's activation size and change since
    initialisation are width-independent, while SP and NTP drift with width."""
    return _coord(s, seeds)

@claim("param.coord_check.width.gpt_adam", paper=GPT, metric=METRIC, tolerance=Tolerance(quick=0.15, full=0.1),
       quick=Coord("gpt", plot="blocks.1 (resid)"),
       full=Coord("gpt", widths=(64, 128, 256, 512, 1024), plot="blocks.1 (resid)"))
def gpt_width(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    """In a pre-LN GPT under muP (heads added with width at fixed head dimension), every activation,
    attention logit and their changes since initialisation are width-independent; SP and NTP drift.

    The quick grid 64..512 carries an O(width^-1/2) finite-size bias in the first block's key
    update (measured max |slope| 0.10-0.12 over seeds 0-2; 0.13-0.21 on 32..256; 0.07 on
    128..1024), so the quick setting is held to 0.15 and the full grid to 0.1."""
    return _coord(s, seeds)

DEPTH_FULL: dict[str, Any] = dict(depths=(2, 4, 8, 16, 32, 64, 128), width=256, steps=5, n_seeds=5, widths=None, plot="resid.last")

@claim("param.coord_check.depth.depth_mup", paper=DEPTH, metric=METRIC, tolerance=0.1,
       quick=Coord("resmlp", "depth_mup", widths=None, depths=(2, 4, 8, 16, 32), width=64, plot="resid.last"),
       full=Coord("resmlp", "depth_mup", **DEPTH_FULL))
def depth_mup_depth(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    """With residual branches scaled by 1/sqrt(depth) on top of muP (Adam LR x depth^-1/2 in
    blocks), the residual stream, its change since initialisation and the output change are
    depth-independent; without depth scaling they grow with depth."""
    return _coord(s, seeds)

@claim("param.coord_check.depth.completep", paper=CP, metric=METRIC, tolerance=0.1,
       quick=Coord("resmlp", "completep", widths=None, depths=(2, 4, 8, 16, 32, 64), width=64, plot="resid.last"),
       full=Coord("resmlp", "completep", **DEPTH_FULL))
def completep_depth(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    """With residual branches scaled by 1/depth (CompleteP, alpha = 1) on top of muP, the residual
    stream and its change since initialisation are depth-independent at large depth; without
    depth scaling they grow with depth."""
    return _coord(s, seeds)
