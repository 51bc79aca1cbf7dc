"""Claims: hyperparameter transfer with mixture-of-experts layers (pre-LN GPT, sigmoid gates,
``1/n_act`` prefactor, bias load balancing, CompleteP ``1/L`` branches, Adam; see
:class:`lmech.param.MoERules`). Axes: width ``D``, depth ``L``, expert count ``E`` at fixed
sparsity ``kappa``, expert width ``M = alpha_ffn D``. Measurements in :mod:`lmech.sim.moe`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmech.claims.toolkit import (ClaimOutcome, Panel, SeedStream, Series, Setting, claim, fragile, known_failure,
                                  one_thread, slope_panel, width_slope)
from lmech.sim.hp_trial import TrialConfig
from lmech.sim.moe import init_stream, lr_sweep, moe_coord_check, moe_param
from lmech.sweep.analysis import analyze_losses
from lmech.sweep.plots import transfer_panels

MOE = "Hyperparameter Transfer with Mixture-of-Expert Layers"
BASE = (("width", 32), ("depth", 2), ("n_experts", 8), ("n_active", 2), ("expert_width", 32))
AXES = {"depth": (-1.0, (2, 4, 8, 16)), "n_experts": (-1.0, (4, 8, 16, 32)),
        "expert_width": (-1.0, (32, 64, 128, 256)), "width": (0.0, (32, 64, 128, 256))}

def _shape(base: dict, axis: str, x: int) -> dict:
    """The base shape with ``axis`` set to ``x`` (E at fixed kappa; D at fixed alpha_ffn)."""
    extra = {"n_active": x * base["n_active"] // base["n_experts"]} if axis == "n_experts" else {}
    return {**base, axis: x, **extra, **({"expert_width": x * base["expert_width"] // base["width"]}
                                         if axis == "width" else {})}

@dataclass(frozen=True)
class Init(Setting):
    """Initial statistics over each axis of ``axes`` (``n_seeds`` weight draws, ``batch_size`` x 32 tokens)."""
    axes: tuple[str, ...] = ("depth", "n_experts", "expert_width", "width")
    n_seeds: int = 2
    batch_size: int = 2

def _init_series(s: Init, seeds: SeedStream, axis: str, **moe):
    base, seed = dict(BASE), seeds.next()
    p = moe_param("completep", base, **moe)
    return [init_stream(_shape(base, axis, x), p, n_seeds=s.n_seeds, seed=seed, batch_size=s.batch_size)
            for x in AXES[axis][1]]

@claim("moe.init_stream_variance", paper=MOE, tolerance=0.1, quick=Init(), full=Init(n_seeds=6, batch_size=8),
       metric="max over L, E, alpha_ffn, D of |fitted slope - predicted| of the init stream variance per squared gate")
def init_stream_variance(s: Init, seeds: SeedStream) -> ClaimOutcome:
    """At initialisation the mixture-of-experts branches add to the residual stream a variance
    ~ 1/(L kappa E alpha_ffn): slope -1 in depth, expert count and alpha_ffn, 0 in width.

    Per squared gate: the chosen gates sigmoid(r)^2 tend to 1/4 only as the router (init ~ 1/D)
    shrinks, so the raw variance falls with D before that (measured raw slope -0.24 over D 32..256).
    Quick, seeds 0-2: max deviation 0.015, 0.048, 0.029 (slopes -1.02 L, -0.99 E, -1.01 alpha_ffn);
    full, seed 0: 0.020."""
    with one_thread():
        runs = {a: _init_series(s, seeds, a) for a in s.axes}
    norm = {a: np.array([r.stream_var / r.gate_sq for r in rs]) for a, rs in runs.items()}
    slopes = {a: width_slope(AXES[a][1], v) for a, v in norm.items()}
    panels = [slope_panel(f"stream variance / gate^2 vs {a}", a, "variance", AXES[a][1], v,
                          reference_slope=AXES[a][0]) for a, v in norm.items()]
    raw = {a: width_slope(AXES[a][1], [r.stream_var for r in rs]) for a, rs in runs.items()}
    return ClaimOutcome(max(abs(v - AXES[a][0]) for a, v in slopes.items()), panels,
                        details={"slopes": slopes, "raw_slopes": raw, "normalized": norm})

@claim("moe.expert_down_init", paper=MOE, tolerance=0.05, quick=Init(axes=("expert_width",)),
       full=Init(axes=("expert_width",), n_seeds=6, batch_size=8),
       metric="max of |slope + 1/2| (paper's down init) and |slope| (fan-in) of the MoE output RMS vs alpha_ffn")
def expert_down_init(s: Init, seeds: SeedStream) -> ClaimOutcome:
    """With the down-projection init sqrt(D)/M a mixture-of-experts layer's output at initialisation
    scales as alpha_ffn^-1/2 (alpha_ffn = M/D at fixed D); with a fan-in init 1/sqrt(M) as alpha_ffn^0.

    Quick, seeds 0-2: max deviation 0.007, 0.020, 0.004 (slopes -0.505 and -0.005 at seed 0);
    full, seed 0: 0.002."""
    alphas = np.array(AXES["expert_width"][1]) / dict(BASE)["width"]
    with one_thread():
        rms = {k: [r.layer_rms for r in _init_series(s, seeds, "expert_width", down_init=k)]
               for k in ("mean_field", "fan_in")}
    slopes = {k: width_slope(alphas, v) for k, v in rms.items()}
    panels = [slope_panel(f"MoE output RMS at init ({k} down init)", "alpha_ffn", "RMS", alphas, v,
                          reference_slope=-0.5 if k == "mean_field" else 0.0) for k, v in rms.items()]
    return ClaimOutcome(max(abs(slopes["mean_field"] + 0.5), abs(slopes["fan_in"])), panels,
                        details={"slopes": slopes, "rms": rms})

@dataclass(frozen=True)
class Coord(Setting):
    """MoE coordinate check along ``axis``; the control drops the 1/n_act prefactor (``n_experts``)
    or takes the fan-in down init (``expert_width``)."""
    axis: str = "n_experts"
    grid: tuple[int, ...] = (4, 8, 16, 32)
    steps: int = 4
    n_seeds: int = 2

def _coord(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    base, seed = dict(BASE), seeds.next()
    ctrl = {"combine_sum": True} if s.axis == "n_experts" else {"down_init": "fan_in"}
    with one_thread():
        r = moe_coord_check(s.axis, s.grid, base, moe_param("completep", base), steps=s.steps, n_seeds=s.n_seeds,
                            seed=seed)
        c = moe_coord_check(s.axis, s.grid, base, moe_param("completep", base, **{k: v for k, v in ctrl.items()
                            if k == "down_init"}), steps=s.steps, n_seeds=s.n_seeds, seed=seed,
                            combine_sum="combine_sum" in ctrl)
    others = [q for q in r.size if ".moe" not in q]
    worst = max([abs(v) for q in others for v in (*r.size[q].values(), *r.delta[q].values())])
    moe_init = {q: r.size[q][0] for q in r.size if q.endswith(".moe")}
    ctrl_init = {q: c.size[q][0] for q in c.size if q.endswith(".moe")}
    panels = [Panel(f"size (solid) and change at t={s.steps} of {q}", s.axis, "RMS", tuple(
        Series(f"{lab} {st}", s.grid, res.means[q][st][:, s.steps if st == "delta" else 0], role="simulation")
        for lab, res in (("rule", r), ("control", c)) for st in ("size", "delta")), "log", "log")
        for q in ("blocks.1.moe", "blocks.1 (resid)")]
    return ClaimOutcome(worst, panels, checks={
        "MoE outputs at init scale as (axis)^-1/2 (+-0.1)": all(abs(v + 0.5) <= 0.1 for v in moe_init.values()),
        "control's MoE outputs at init differ by >= 0.4 in slope": all(
            abs(ctrl_init[q] - moe_init[q]) >= 0.4 for q in moe_init)},
        details={"moe_init_slopes": moe_init, "control_moe_init_slopes": ctrl_init,
                 "moe_delta_slopes": {q: r.delta[q] for q in moe_init}, "others_max_abs_slope": worst})

COORD_METRIC = "max |log2-log2 slope| of size and change (t <= steps) of every activation outside the MoE layers"

@claim("moe.coord_check.experts", paper=MOE, tolerance=0.15, metric=COORD_METRIC, quick=Coord(),
       full=Coord(grid=(4, 8, 16, 32, 64), steps=8, n_seeds=4))
def coord_experts(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    """With sigmoid gates and a 1/n_act prefactor, growing the expert count at fixed sparsity leaves
    the residual stream, attention and logits unchanged in size and update (no E factor in any
    rule); each MoE output at init shrinks as E^-1/2; without 1/n_act it grows instead.

    Quick, seeds 0-2: 0.097, 0.119, 0.090; full (E to 64, 8 steps), seed 0: 0.040. The MoE outputs'
    own change at t = 1..4 falls as E^-0.42..-0.30 (seed 0): early updates are dominated by the
    init-sized (kappa E)^-1/2 terms (routing switches, gate changes), so they are reported, not held
    to the tolerance."""
    return _coord(s, seeds)

@claim("moe.coord_check.expert_width", paper=MOE, tolerance=0.15, metric=COORD_METRIC,
       quick=Coord("expert_width", (32, 64, 128, 256)), full=Coord("expert_width", (32, 64, 128, 256, 512), 8, 4))
def coord_expert_width(s: Coord, seeds: SeedStream) -> ClaimOutcome:
    """Growing the expert width M at fixed D with the paper's rules (down init sqrt(D)/M, down LR
    and eps ~ 1/M) leaves every activation outside the MoE layers unchanged in size and update,
    while each MoE output at init shrinks as alpha_ffn^-1/2 (fan-in down init: alpha_ffn^0).

    Quick, seeds 0-2: 0.079, 0.108, 0.114 (the largest: the first block's attention output); full
    (M to 512, 8 steps), seed 0: 0.084."""
    return _coord(s, seeds)

@dataclass(frozen=True)
class Transfer(Setting):
    """An LR sweep of the MoE GPT along ``axis`` over ``sizes`` (first = base), the paper's rules vs
    ``control`` (TrialConfig overrides); ``fixed`` holds the other TrialConfig fields."""
    axis: str = "n_experts"
    sizes: tuple[int, ...] = (4, 16)
    log2_lrs: tuple[float, ...] = (-9.0, -8.0, -7.0, -6.0, -5.0, -4.0)
    control: tuple[tuple[str, object], ...] = (("n_active", 1),)
    n_seeds: int = 1
    steps: int = 100
    control_check: bool = True
    fixed: tuple[tuple[str, object], ...] = (("width", 32), ("depth", 2), ("n_experts", 8), ("n_active", 2),
                                             ("expert_width", 32), ("base_width", 32), ("seq_len", 32),
                                             ("batch_size", 8))

def _config(s: Transfer, x: int, **over) -> TrialConfig:
    cfg = TrialConfig(**{"model": "gpt", "scheme": "completep", "lr": 1e-3, "steps": s.steps, **dict(s.fixed)})
    kw = {s.axis: x, "n_active": x // 4} if s.axis == "n_experts" else {s.axis: x}
    if s.axis == "width":
        kw["expert_width"] = x
    return replace(cfg, **{**kw, **over})

def _transfer(s: Transfer, seeds: SeedStream, tol: float = 0.5) -> ClaimOutcome:
    trial_seeds = list(seeds.take(s.n_seeds))
    res = {}
    for name, over in (("rule", {}), ("control", dict(s.control))):
        losses = lr_sweep([_config(s, x, **over) for x in s.sizes], s.log2_lrs, trial_seeds)
        res[name] = analyze_losses(s.sizes, s.log2_lrs, losses, seeds=trial_seeds, size_key=s.axis,
                                   rng=seeds.next(), n_boot=500)
    test, ctrl = res["rule"], res["control"]
    checks = {"optimum inside the LR grid at every size": test.criteria["optima_interior"]}
    if s.control_check:
        checks["control drifts more than the rule"] = ctrl.max_shift > test.max_shift
    return ClaimOutcome(test.max_shift, transfer_panels(res), checks=checks,
        details={"rule": test.to_dict(), "control": ctrl.to_dict(), "control_max_shift": ctrl.max_shift})

SHIFT = "max over sizes of |log2 lr*(size) - log2 lr*(base)| (parabola-interpolated optimum)"

@claim("transfer.experts.count", paper=MOE, metric=SHIFT, tolerance=0.5, slow=True, quick=Transfer(control_check=False),
       full=Transfer(sizes=(4, 8, 16), log2_lrs=tuple(np.arange(-8.0, -3.9, 0.5)), n_seeds=2, control_check=False))
def experts_count(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """The optimal Adam learning rate of a mixture-of-experts GPT does not move when the number of
    experts grows at fixed sparsity (kappa = 1/4, E = 4 -> 16).

    No control is required to drift: at this size none was found that does reliably (quick, seeds
    0-2: rule 0.31, 0.08, 0.25; E grown at fixed n_act = 1, the control shown, 0.78, 0.11, 0.18;
    no 1/n_act prefactor 0.29 at seed 0), so a pass shows stability, not resolving power. Full
    (E = 4, 8, 16, 2 seeds, LR step 0.5), seed 0: 0.18 (control 0.26; 611 s on a loaded machine)."""
    return _transfer(s, seeds)

WIDTH_M = Transfer("expert_width", (32, 128, 512), control=(("down_init", "fan_in"),),
                   fixed=tuple((k, v) for k, v in Transfer.fixed if k not in ("expert_width", "n_experts", "n_active"))
                   + (("base_expert_width", 32), ("n_experts", 4), ("n_active", 1)))

@claim("transfer.experts.width", paper=MOE, metric=SHIFT, tolerance=0.5, slow=True, quick=WIDTH_M,
       full=replace(WIDTH_M, log2_lrs=tuple(np.arange(-7.5, -4.4, 0.5)), n_seeds=2),
       expect=(fragile("quick (1 seed, LR step 1, alpha_ffn 1 -> 16): rule 0.57, 0.16, 0.31 at seeds 0-2, fan-in "
                       "control 0.53, 0.23, 0.35: both optima creep up with alpha_ffn and the control drifts only "
                       "0.04-0.07 more (less at seed 0); alpha_ffn <= 16 is short of the asymptotic regime "
                       "(alpha_ffn >> 2) where the fan-in drift grows", n_seeds=3, min_passing=1, modes=("quick",)),
               known_failure("full, seed 0 (2 seeds, LR step 0.5): 0.69, control 0.73; both optima creep up with "
                             "alpha_ffn (rule -6.37, -5.85, -5.68; fan-in -6.37, -5.84, -5.64)", modes=("full",))))
def experts_width(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """With the down-projection init sqrt(D)/M the optimal learning rate stays put over the expert
    width (alpha_ffn = 1..16 at fixed D = 32) and moves less than with a fan-in down init."""
    return _transfer(s, seeds)

@claim("transfer.moe.width", paper=MOE, metric=SHIFT, tolerance=0.5, slow=True,
       quick=Transfer("width", (32, 128), control=(("scheme", "sp"),)),
       full=Transfer("width", (32, 64, 128), log2_lrs=tuple(np.arange(-8.5, -4.4, 0.5)),
                     control=(("scheme", "sp"),), n_seeds=2),
       expect=fragile("quick (1 seed, LR step 1, width 32 -> 128): 0.59, 0.89, 0.07 at seeds 0-2, the optimum "
                      "moving down with width (SP: 2.4, 3.3, 1.7); the dense CompleteP GPT moved 0.06 on the same "
                      "grid; at one trial seed the rule moved 0.34, with a fan-in router init (gamma 1/2) 0.38, "
                      "with the paper's per-group constants (1/16, 1/4) set to 1 0.03: one short run's optimum is "
                      "flat to a fraction of an octave, and the constants tuned at the paper's base may not suit "
                      "this one", n_seeds=3, min_passing=1, modes=("quick",)))
def moe_width(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """Under the paper's rules (muP widths, CompleteP depth, MoE table) the optimal learning rate of
    a mixture-of-experts GPT is width-independent (alpha_ffn = 1, E = 8, kappa = 1/4); under SP it drifts.

    Full (widths 32, 64, 128, 2 seeds, LR step 0.5), seed 0: 0.23 (log2 lr* -6.34, -6.27, -6.11; SP
    1.69; 402 s on a loaded machine)."""
    return _transfer(s, seeds)
