"""Claims: hyperparameter transfer across width and depth.

Each claim runs a size x learning-rate x seed sweep of :func:`lmech.sim.hp_trial.run_trial` for
the parameterization under test and its negative control (same trial seeds) and analyses it with
:func:`lmech.sweep.analyze`: seed-mean final training loss (diverged runs = +inf) over the ``log2 lr``
grid, optimum by a parabola through the argmin and its neighbours, bootstrap interval over seeds. The metric of the four transfer claims is ``max_size |log2 lr*(size) -
log2 lr*(base)|`` of the scheme under test (tolerance 0.5 = half an octave); the checks require
the optimum inside the grid at every size and the control to fail the same test, without which
a pass would only show that the experiment cannot resolve a drift. Quick settings take 10-35 s
of one core; full ones follow the protocol (LR step 0.5, 3 seeds, base width >= 128) where one
core allows it.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lmech.claims.toolkit import ClaimOutcome, Panel, SeedStream, Series, Setting, claim, fragile, known_failure
from lmech.sweep import analyze, run_sweep, transfer_spec
from lmech.sweep.analysis import analyze_losses
from lmech.sweep.plots import transfer_panels

TP5 = "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer"
DEPTH = "Depthwise Hyperparameter Transfer in Residual Networks: Dynamics and Scaling Limit"
CP = "Don't be lazy: CompleteP enables compute-efficient deep transformers"
LABEL = {"sp": "SP", "mup": "muP", "depth_mup": "depth-muP", "completep": "CompleteP"}
SHIFT = "max over sizes of |log2 lr*(size) - log2 lr*(base)| (parabola-interpolated optimum)"

def grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    return tuple(start + i * step for i in range(int(round((stop - start) / step)) + 1))

@dataclass(frozen=True)
class Transfer(Setting):
    """A size x LR x seed sweep of ``scheme`` and ``control`` along ``axis`` (smallest size = base);
    ``fixed`` holds the other trial config entries (fixed width/depth, base shape, context)."""
    model: str = "mlp"
    scheme: str = "mup"
    control: str = "sp"
    axis: str = "width"
    sizes: tuple[int, ...] = (64, 128, 256, 1024)
    log2_lrs: tuple[float, ...] = grid(-10, -4, 1)
    control_log2_lrs: tuple[float, ...] = grid(-10, -4, 1)
    n_seeds: int = 1
    steps: int = 100
    batch_size: int = 64
    fixed: tuple[tuple[str, Any], ...] = (("depth", 3), ("base_width", 64))
    n_boot: int = 1000

def _sweeps(s: Transfer, seeds: SeedStream):
    """Both sweeps on the same trial seeds, analysed: (scheme's analysis, control's analysis)."""
    trial_seeds, out = list(seeds.take(s.n_seeds)), []
    with tempfile.TemporaryDirectory(prefix="lmech-transfer-") as root:
        for scheme, lrs in ((s.scheme, s.log2_lrs), (s.control, s.control_log2_lrs)):
            spec = transfer_spec(model=s.model, scheme=scheme, lrs=[2.0**x for x in lrs], seeds=trial_seeds,
                                 steps=s.steps, batch_size=s.batch_size, trial="lmech.sim.hp_trial:run_trial",
                                 **{f"{s.axis}s": list(s.sizes)}, **dict(s.fixed))
            run = run_sweep(spec, f"{root}/{scheme}", executor="inprocess", retries=0, progress=False)
            if not run.complete:
                raise RuntimeError(f"{scheme} sweep incomplete ({run.summary()}):\n"
                                   + "".join(str(t.error) for t in run.errors[:1]))
            out.append(analyze(run, size_key=s.axis, n_boot=s.n_boot, rng=seeds.next()))
    return out

def _transfer(s: Transfer, seeds: SeedStream, tol: float = 0.5) -> ClaimOutcome:
    test, ctrl = _sweeps(s, seeds)
    name, cname = LABEL[s.scheme], LABEL[s.control]
    drifts = ctrl.max_shift > tol or (s.axis == "width" and not ctrl.criteria["monotone"])
    worse = " or its loss at the base LR worsens with width" if s.axis == "width" else ""
    return ClaimOutcome(test.max_shift, transfer_panels({name: test, cname: ctrl}), checks={
        f"{name} optimum bracketed inside the LR grid at every {s.axis}": test.criteria["optima_interior"],
        f"control {cname} drifts (max shift > {tol:g}){worse}": drifts,
    }, details={"scheme": s.scheme, "control": s.control, s.scheme: test.to_dict(), s.control: ctrl.to_dict(),
                "control_max_shift": ctrl.max_shift, "seeds": list(test.seeds)})

MLP_FULL = Transfer(sizes=(128, 256, 512, 1024), log2_lrs=grid(-9, -6, 0.5), control_log2_lrs=grid(-11, -6, 1),
                    n_seeds=3, steps=800, fixed=(("depth", 3), ("base_width", 128)))

@claim("transfer.width.mlp", paper=TP5, metric=SHIFT, tolerance=0.5, quick=Transfer(), full=MLP_FULL,
       expect=known_failure(
           "the muP optimum drifts up with width over short horizons: quick (100 steps) 0.64, 0.78, 0.77 at seeds "
           "0, 1, 2 (log2 lr* -6.6 -> -5.8 from width 64 to 1024), 200 steps (widths 128-2048) 0.667. At 200 steps "
           "microsoft/mup's MuAdam drifts the same way on the bit-identical model (log2 lr* from width 128 to 2048: "
           "lmech -7.05/-6.68/-6.38, mup -7.05/-6.72/-6.29); the full setting (800 steps) passes: 0.20 at seed 0 "
           "(log2 lr* -7.47, -7.27, -7.46, -7.45; SP -7.48 -> -9.40): a short-horizon effect, not a muP error",
           modes=("quick",)))
def mlp_width(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """Under muP the optimal Adam learning rate of an MLP is width-independent: its log2 moves by
    <= 0.5 across an 8x-16x width range, while under SP it drifts (or the loss at the base optimum worsens).

    MLP of 3 linear layers on MNIST-1D, AdamW, constant LR. Full: 800 steps (past the short-horizon
    drift, see transfer.width.horizon), base width 128, widths to 1024 (a width-2048 trial alone costs
    ~22 s at 800 steps), muP log2 lr -9..-6 around the optimum (-7.5 is the grid argmin at every width), SP
    -11..-6 (argmin -7 -> -9): 471 s of one core, same value as the wider -9.5..-5.5 / -11..-5 grids (697 s)."""
    return _transfer(s, seeds)

GPT: dict[str, Any] = dict(model="gpt", batch_size=8, n_seeds=2)

@claim("transfer.width.gpt", paper=TP5, metric=SHIFT, tolerance=0.5, slow=True,
       quick=Transfer(**GPT, sizes=(32, 64, 128), log2_lrs=grid(-8, -4, 1), control_log2_lrs=grid(-8, -4, 1),
                      fixed=(("depth", 2), ("base_width", 32), ("seq_len", 32))),
       full=Transfer(**GPT, sizes=(32, 64, 128), log2_lrs=grid(-7.5, -5.5, 0.5), control_log2_lrs=grid(-10, -6, 1),
                     steps=800, fixed=(("depth", 2), ("base_width", 32), ("seq_len", 32))))
def gpt_width(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """Under muP the optimal Adam learning rate of a pre-LN GPT is width-independent (log2 moves
    <= 0.5 across 4x from base width 32; larger is a GPU job), while under SP it drifts.

    Character-level pre-LN GPT, 2 blocks, head_dim 16, AdamW; quick 100 steps, full 800 (past the short
    horizon: base 128, 100 steps gave 0.565; a width-128 trial costs ~9 s of one core, width 256 ~27 s).
    Full: muP log2 lr -7.5..-5.5 around the optimum (seed 0: -6.65, -6.65, -6.84, value 0.18; SP -6.77 -> -8.74),
    402 s of one core (-8..-5 / SP -10..-5: same value, 599 s); an SP optimum on the lower edge of -10..-6
    would bound its drift, all the control needs."""
    return _transfer(s, seeds)

RESMLP = Transfer("resmlp", "depth_mup", "mup", "depth", (2, 4, 8), grid(-10, -7, 0.5), grid(-10, -7, 0.5), n_seeds=3,
                  steps=150, fixed=(("width", 64), ("base_depth", 2)))

@claim("transfer.depth.resmlp", paper=DEPTH, metric=SHIFT, tolerance=0.5, quick=RESMLP,
       full=replace(RESMLP, sizes=(2, 4, 8, 16, 32), log2_lrs=grid(-11, -5, 0.5), control_log2_lrs=grid(-11, -5, 0.5),
                    steps=200))
def resmlp_depth(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """With 1/sqrt(L)-scaled residual branches (depth-muP) the optimal learning rate of a residual
    MLP transfers across depth (log2 moves <= 0.5 over depths >= 4x apart); without branch scaling it drifts.

    Pre-LN residual MLP on MNIST-1D, AdamW; depth-muP also scales the Adam LR of the blocks by L^-1/2."""
    return _transfer(s, seeds)

GPT_DEPTH = Transfer("gpt", "completep", "mup", "depth", (2, 8), grid(-9, -4, 1), grid(-9, -4, 1), steps=80,
                     batch_size=8, fixed=(("width", 32), ("base_width", 32), ("base_depth", 2), ("seq_len", 32)))

@claim("transfer.depth.gpt", paper=CP, metric=SHIFT, tolerance=0.5, quick=GPT_DEPTH,
       expect=(fragile("quick (1 seed, 80 steps, LR step 1): 0.502, 0.15, 0.492 at seeds 0, 1, 2; the optimum of one "
                       "short run moves by up to half an octave between seeds", n_seeds=3, min_passing=1,
                       modes=("quick",)),
               known_failure("full, seed 0: 0.81 (an earlier seed stream gave 0.32): the depth-2 optimum (log2 lr "
                             "-5.73) sits 0.7 above depths 4-16, which agree within 0.17 (-6.44, -6.54, -6.37); muP "
                             "drifts 1.79", modes=("full",))),
       full=replace(GPT_DEPTH, sizes=(2, 4, 8, 16), log2_lrs=grid(-9, -4, 0.5), control_log2_lrs=grid(-9, -4, 0.5),
                    n_seeds=3, steps=100))
def gpt_depth(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """With CompleteP (1/L residual branches) the optimal learning rate of a pre-LN GPT transfers
    across depth (log2 moves <= 0.5 over depths >= 4x apart); plain muP drifts."""
    return _transfer(s, seeds)

def _violations(mean: np.ndarray) -> list[tuple[int, int]]:
    """(size index, LR index) pairs where the next wider model is not strictly better."""
    return [(i, h) for h in range(mean.shape[1]) for i in range(mean.shape[0] - 1)
            if not (np.isfinite(mean[i + 1, h]) and mean[i + 1, h] < mean[i, h])]

MONO = Transfer(sizes=(64, 256, 1024), log2_lrs=(-7.0, -6.0, -5.0), control_log2_lrs=(-7.0, -6.0, -5.0), n_seeds=2)

@claim("transfer.width.monotone", paper=TP5, tolerance=0, quick=MONO,
       expect=(fragile("quick (2 seeds): 1, 0, 0 violations at seeds 0, 1, 2; the one at seed 0 (log2 lr -7, width "
                       "256 -> 1024) is 0.4 pooled seed-std, within noise", n_seeds=3, min_passing=1, modes=("quick",)),
               known_failure("full, seed 0 (3 seeds): 1 violation (an earlier seed stream gave 0): width 1024 -> "
                             "2048 at log2 lr -6, loss 0.6592 -> 0.6601, -0.02 pooled seed-std, within noise",
                             modes=("full",))),
       metric="number of (LR, consecutive width pair) orderings where the wider muP model is not strictly better",
       full=replace(MONO, sizes=(128, 256, 512, 1024, 2048), log2_lrs=(-8.0, -7.0, -6.0),
                    control_log2_lrs=(-8.0, -7.0, -6.0), n_seeds=3, steps=200, fixed=MLP_FULL.fixed))
def width_monotone(s: Transfer, seeds: SeedStream) -> ClaimOutcome:
    """Under muP, at fixed hyperparameters (learning rates around the base optimum) wider is better:
    the final training loss decreases with width at every fixed LR; under SP it does not.

    The LRs lie within one octave of the base optimum (log2 lr* ~ -6.2 at base 64 / 100 steps, ~ -7.0
    at base 128 / 200 steps): a fixed LR far from it is not a transferred HP (a full run from base 64
    over log2 lr -8..-4 failed only at the two ends)."""
    mu, sp = _sweeps(s, seeds)
    panels, found = [], {}
    for name, a in (("muP", mu), ("SP", sp)):
        found[name] = [{"width": a.sizes[i], "next_width": a.sizes[i + 1], "log2_lr": a.log2_hp[h]}
                       for i, h in _violations(a.mean_loss)]
        series = [Series(f"lr 2^{x:g} {name} sim", np.log2(a.sizes[ok]), a.mean_loss[ok, h],
                         yerr=np.nan_to_num(a.std_loss[ok, h]), role="simulation")
                  for h, x in enumerate(a.log2_hp) if (ok := np.isfinite(a.mean_loss[:, h])).any()]
        panels.append(Panel(f"{name}: final training loss vs width at fixed LR", "log2 width", "final train loss",
                            tuple(series)))
    with np.errstate(invalid="ignore"):  # how far each muP improvement clears the seed noise
        margin = (mu.mean_loss[:-1] - mu.mean_loss[1:]) / np.sqrt((mu.std_loss[:-1] ** 2 + mu.std_loss[1:] ** 2) / 2)
    return ClaimOutcome(float(len(found["muP"])), panels,
                        checks={"control SP: wider is not always better at fixed LR": len(found["SP"]) > 0},
                        details={"widths": mu.sizes, "log2_lr": mu.log2_hp, "mup_mean_loss": mu.mean_loss,
                                 "sp_mean_loss": sp.mean_loss, "mup_violations": found["muP"],
                                 "sp_violations": found["SP"], "mup_improvement_in_pooled_seed_std": margin})

@dataclass(frozen=True)
class Horizon(Transfer):
    horizons: tuple[int, ...] = (40, 320)  # the loss after h steps of a constant-LR run of max(horizons) steps

def _at_horizon(trials, s: Horizon, h: int, rng) -> Any:
    seeds_ = sorted({t.config["seed"] for t in trials})
    L = np.full((len(s.sizes), len(s.log2_lrs), len(seeds_)), np.nan)
    for t in trials:
        c, curve = t.config, np.array([np.inf if v is None else v for v in t.result["train_curve"]], float)
        w = curve[h - max(1, -(-h // 20)):h] if len(curve) >= h else np.array([np.inf])
        i, j = s.sizes.index(c["width"]), int(np.argmin(np.abs(np.array(s.log2_lrs) - np.log2(c["lr"]))))
        L[i, j, seeds_.index(c["seed"])] = w.mean() if np.isfinite(w).all() and w.mean() <= curve[0] else np.inf
    return analyze_losses(s.sizes, s.log2_lrs, L, size_key="width", rng=rng)

@claim("transfer.width.horizon", paper=TP5, tolerance=0.5, metric="|muP optimum drift| at the longest horizon / "
       "at the shortest (widest vs base width)", quick=Horizon(sizes=(64, 256), log2_lrs=grid(-10, -4, 1)),
       full=Horizon(sizes=(128, 1024), log2_lrs=grid(-9, -5, 0.5), n_seeds=3, horizons=(100, 200, 400, 800),
                    fixed=(("depth", 3), ("base_width", 128))),
       expect=(fragile("quick (widths 64, 256; 1 seed): 0.40, 4.57, 0.26 at seeds 0, 1, 2, and the passes are not the "
                       "stated effect: the 40-step drift is -0.74, +0.10, -0.88 (down with width), the 320-step one "
                       "+0.29, +0.44, +0.23", n_seeds=3, min_passing=1, modes=("quick",)),
               known_failure("full (seed 0, 3 seeds): 0.51 and the 100-step drift 0.22 < 0.25; the drift is not "
                             "monotone in the horizon: +0.22, +0.93, +0.85, +0.11 at 100, 200, 400, 800 steps "
                             "(short-horizon rise, then flat by 800)", modes=("full",))))
def width_horizon(s: Horizon, seeds: SeedStream) -> ClaimOutcome:
    """The drift of the muP optimum with width is a short-horizon effect: it shrinks as training
    lengthens, to at most half of its size at the shortest horizon."""
    spec = transfer_spec(model=s.model, scheme=s.scheme, lrs=[2.0**x for x in s.log2_lrs], seeds=seeds.take(s.n_seeds),
                         steps=max(s.horizons), batch_size=s.batch_size, trial="lmech.sim.hp_trial:run_trial",
                         widths=list(s.sizes), **dict(s.fixed))
    with tempfile.TemporaryDirectory(prefix="lmech-horizon-") as root:
        run = run_sweep(spec, root, executor="inprocess", retries=0, progress=False)
    found = {h: _at_horizon(run.trials, s, h, seeds.next()) for h in s.horizons}
    drift = {h: float(a.optima[-1].log2_lr - a.optima[0].log2_lr) for h, a in found.items()}
    first, last = drift[s.horizons[0]], drift[s.horizons[-1]]
    return ClaimOutcome(abs(last) / max(abs(first), 1e-9), [Panel(
        "muP: optimum drift from base to widest width", "log2 steps", "log2 lr*(widest) - log2 lr*(base)",
        [Series("measured", np.log2(s.horizons), list(drift.values()), role="simulation")])],
        checks={"a drift to shrink at the shortest horizon (>= 0.25)": abs(first) >= 0.25},
        details={"drift": {str(h): d for h, d in drift.items()}})
