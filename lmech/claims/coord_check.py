"""Claims: the coordinate check of the muP family (width) and of depth-muP / CompleteP (depth).

Each claim runs :func:`lmech.sim.coord_check` for the scheme and its negative controls.
The "theory" is that every activation size and change since initialisation is
width-independent (muP, "Tensor Programs V") or depth-independent (1/sqrt(L) branches,
"Depthwise Hyperparameter Transfer in Residual Networks: Dynamics and Scaling Limit";
1/L branches, "Don't be lazy: CompleteP enables compute-efficient deep transformers"); the
metric is the largest ``|log-log slope|`` over all tracked quantities and steps, fitted on
the largest 4 grid points. The check must also separate: SP and NTP (width) or muP without
depth scaling (depth) reach ``|slope| >= 0.4``.
"""
from __future__ import annotations

from dataclasses import dataclass

from lmech.claims.registry import ClaimOutcome, Panel, Series, Setting, Tolerance, claim

_TP5 = "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer"
_DEPTH = "Depthwise Hyperparameter Transfer in Residual Networks: Dynamics and Scaling Limit"
_CP = "Don't be lazy: CompleteP enables compute-efficient deep transformers"
_GPT = "Infinite Limits of Multi-head Transformer Dynamics"
_LABEL = {"sp": "SP", "ntp": "NTP", "mup": "muP", "depth_mup": "depth-muP", "completep": "CompleteP"}
_METRIC = "max |log2-log2 slope| of activation size and change since init (largest 4 grid points)"


@dataclass(frozen=True)
class CoordSetting(Setting):
    """A coordinate-check configuration."""

    model: str = "mlp"
    scheme: str = "mup"
    optimizer: str = "adam"
    widths: tuple[int, ...] | None = (64, 128, 256, 512)
    depths: tuple[int, ...] | None = None
    width: int = 128
    depth: int | None = None
    steps: int = 4
    seeds: int = 3


def _outcome(setting: CoordSetting, seed: int, plot_quantity: str) -> ClaimOutcome:
    import torch

    from lmech.sim.coord_check import coord_check

    # small matrices: intra-op threads do not pay, and on a busy machine they cost up to 100x (measured)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        r = coord_check(
            setting.model, setting.scheme, widths=setting.widths, depths=setting.depths, width=setting.width,
            depth=setting.depth, steps=setting.steps, seeds=setting.seeds, optimizer=setting.optimizer, seed=seed,
        )
    finally:
        torch.set_num_threads(threads)
    t = r.steps
    q = plot_quantity if plot_quantity in r.quantities else r.quantities[-1]
    series = []
    for sc in [r.scheme] + r.controls:
        y = r.means(sc, q, "delta", t)
        err = [row["std"] / r.seeds**0.5 for row in r.rows
               if row["scheme"] == sc and row["quantity"] == q and row["stat"] == "delta" and row["t"] == t]
        series.append(Series(f"{_LABEL[sc]} sim", r.grid, y, yerr=err, role="simulation"))
    base = r.means(r.scheme, q, "delta", t)[0]
    series.append(Series(f"{_LABEL[r.scheme]} theory", r.grid, [base] * len(r.grid), role="reference"))
    panels = [Panel(f"{q}: change since init after {t} steps", r.axis, "RMS(h_t - h_0)", tuple(series),
                    xscale="log", yscale="log")]
    checks = {f"control {_LABEL[c]} separates (|slope| >= {r.separation:g})": v >= r.separation
              for c, v in r.control_max_slope.items()}
    worst = {qq: max(abs(s) for stat in ("size", "delta") for s in r.slopes[r.scheme][qq][stat].values())
             for qq in r.quantities}
    details = {
        "axis": r.axis, "grid": r.grid, "verdict": r.verdict, "violations": r.violations[:20],
        "control_max_slope": r.control_max_slope, "max_abs_slope_by_quantity": worst,
        "full_grid_slope_of_plotted": r.full_slopes[r.scheme][q]["delta"][t], "lr": r.lr,
        "zero_readout": r.zero_readout, "seconds": r.seconds,
    }
    return ClaimOutcome(value=r.max_abs_slope, panels=panels, checks=checks, details=details)


# ----------------------------------------------------------------------------- width, MLP
@dataclass(frozen=True)
class MlpAdamWidth(CoordSetting):
    @classmethod
    def quick(cls):
        return cls(widths=(64, 128, 256, 512), seeds=5)

    @classmethod
    def full(cls):
        return cls(widths=(64, 128, 256, 512, 1024, 2048), steps=5, seeds=5)


@claim(
    "param.coord_check.width.mlp_adam",
    paper=_TP5,
    statement="Under muP with Adam, every layer's activation size and its change since initialisation are "
    "width-independent (3-layer ReLU MLP on MNIST-1D), while SP and NTP drift with width.",
    metric=_METRIC,
    tolerance=0.1,
    setting=MlpAdamWidth,
)
def mlp_adam_width(setting: MlpAdamWidth, seed: int) -> ClaimOutcome:
    return _outcome(setting, seed, "layers.1")


@dataclass(frozen=True)
class MlpSgdWidth(CoordSetting):
    optimizer: str = "sgd"

    @classmethod
    def quick(cls):
        return cls(widths=(64, 128, 256, 512), seeds=5)

    @classmethod
    def full(cls):
        return cls(widths=(64, 128, 256, 512, 1024, 2048), steps=5, seeds=5)


@claim(
    "param.coord_check.width.mlp_sgd",
    paper=_TP5,
    statement="Under muP with SGD (Table 8 form), every layer's activation size and change since initialisation "
    "are width-independent, while SP and NTP drift with width.",
    metric=_METRIC,
    tolerance=0.1,
    setting=MlpSgdWidth,
)
def mlp_sgd_width(setting: MlpSgdWidth, seed: int) -> ClaimOutcome:
    return _outcome(setting, seed, "layers.1")


# ----------------------------------------------------------------------------- width, GPT
@dataclass(frozen=True)
class GptWidth(CoordSetting):
    model: str = "gpt"

    @classmethod
    def quick(cls):
        return cls(widths=(64, 128, 256, 512))

    @classmethod
    def full(cls):
        return cls(widths=(64, 128, 256, 512, 1024))


@claim(
    "param.coord_check.width.gpt_adam",
    paper=_GPT,
    statement="In a pre-LN GPT under muP (heads added with width at fixed head dimension), every activation, "
    "attention logit and their changes since initialisation are width-independent; SP and NTP drift.",
    metric=_METRIC,
    # the quick grid 64..512 carries an O(width^-1/2) finite-size bias in the first block's key update
    # (measured max |slope| 0.10-0.12 over seeds 0-2; 0.13-0.21 on 32..256; 0.07 on 128..1024): the spec's
    # CPU-CI tolerance 0.15 applies to it; the full grid is held to 0.1
    tolerance=Tolerance(quick=0.15, full=0.1),
    setting=GptWidth,
)
def gpt_width(setting: GptWidth, seed: int) -> ClaimOutcome:
    return _outcome(setting, seed, "blocks.1 (resid)")


# ----------------------------------------------------------------------------- depth, residual MLP
@dataclass(frozen=True)
class DepthMupDepth(CoordSetting):
    model: str = "resmlp"
    scheme: str = "depth_mup"
    widths: tuple[int, ...] | None = None

    @classmethod
    def quick(cls):
        return cls(depths=(2, 4, 8, 16, 32), width=64)

    @classmethod
    def full(cls):
        return cls(depths=(2, 4, 8, 16, 32, 64, 128), width=256, steps=5, seeds=5)


@claim(
    "param.coord_check.depth.depth_mup",
    paper=_DEPTH,
    statement="With residual branches scaled by 1/sqrt(depth) on top of muP (Adam LR x depth^-1/2 in blocks), the "
    "residual stream, its change since initialisation and the output change are depth-independent; "
    "without depth scaling they grow with depth.",
    metric=_METRIC,
    tolerance=0.1,
    setting=DepthMupDepth,
)
def depth_mup_depth(setting: DepthMupDepth, seed: int) -> ClaimOutcome:
    return _outcome(setting, seed, "resid.last")


@dataclass(frozen=True)
class CompletePDepth(CoordSetting):
    model: str = "resmlp"
    scheme: str = "completep"
    widths: tuple[int, ...] | None = None

    @classmethod
    def quick(cls):
        return cls(depths=(2, 4, 8, 16, 32, 64), width=64)

    @classmethod
    def full(cls):
        return cls(depths=(2, 4, 8, 16, 32, 64, 128), width=256, steps=5, seeds=5)


@claim(
    "param.coord_check.depth.completep",
    paper=_CP,
    statement="With residual branches scaled by 1/depth (CompleteP, alpha = 1) on top of muP, the residual "
    "stream and its change since initialisation are depth-independent at large depth; without depth "
    "scaling they grow with depth.",
    metric=_METRIC,
    tolerance=0.1,
    setting=CompletePDepth,
)
def completep_depth(setting: CompletePDepth, seed: int) -> ClaimOutcome:
    return _outcome(setting, seed, "resid.last")
