"""Nonlinear DMFT solvers: accuracy and cost against simulating networks, and cost scaling.

1. Variants (two-layer tanh problem of ``dmft.two_layer.tanh``, P = 8, 100 GD steps, gamma0 = 1.5).
   Reference: the forward solver on a large scrambled-Sobol set (its stated standard error is
   printed). Per variant -- forward pass with Sobol / i.i.d. particles, float32, and the damped
   iteration with fresh samples -- the rms error of the residual trajectory over seeds against the
   reference at several sample counts, with the fitted slopes of error and time against samples.
2. Goals, side by side in one run (times interleaved where compared):
   (a) the two-layer solver (default float64, and precision="float32") at the error of one width-4096
       network vs training it (>= 10x); both return the same arrays (residuals and predictions:
       ``track_kernels=False`` on both sides);
   (b) deep (L = 2) at its default error vs the cheapest equal-error ensemble of networks;
   (c) the N -> infinity answer to 0.1% vs the cheapest ensemble reaching 0.1% (if any does).
   Ensembles: for each width the smallest seed count whose averaged residual trajectory is within
   the target of the reference (widths whose bias alone exceeds it are unreachable).
3. Scaling. Seconds per forward pass of ``two_layer`` against P, T (steps) and samples S, and per
   sweep of ``deep`` (L = 2) against T, P and S, with fitted log-log exponents.

    python bench/dmft.py [--quick] [--threads 1] [--only variants|goals|scaling] [--clock wall|cpu] [--json PATH]

``--json PATH`` also writes the goal ratios (``goal_a/network_over_solver`` and its ``_float32`` twin,
``goal_b/ensemble_over_solver``,
``goal_c/ensemble_over_solver``), the variants' error and time slopes and the fitted cost exponents as data
(bench/_results.py).

Timings are medians of wall-clock time, or with ``--clock cpu`` of this process's CPU time (with
``--threads 1`` that is the work done, which stays meaningful on a loaded shared machine where
wall time is inflated by waiting); ratios and exponents are what matter.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _results import Recorder, add_json_argument  # noqa: E402
from _timing import CLOCKS, interleaved  # noqa: E402
from lmech.sim.mean_field import sphere_regression_task as _sphere_task  # noqa: E402
from lmech.results import ConvergenceWarning  # noqa: E402
from lmech.sim.mean_field import train_mean_field  # noqa: E402
from lmech.theory.dmft.sampling import deep, two_layer  # noqa: E402


_CLOCK = "wall"  # set by --clock


REC = Recorder()


def _timed(fns, repeats: int) -> list[float]:
    """Median time of each function over interleaved rounds, on the selected clock."""
    return interleaved(fns, repeats=repeats, warmup=0, clock=_CLOCK)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


_KW = dict(gamma0=1.5, lr=0.1, steps=100)


def _two_layer_problem():
    X, y, _, _ = _sphere_task(8, 0, 10)
    return X, y


def _reference(X, y, quick: bool):
    t0 = CLOCKS[_CLOCK]()
    ref = two_layer(X, y, samples=2**20 if quick else 2**22, replicas=8, precision="float32", seed=123, **_KW)
    print(f"reference: forward, {ref.samples} Sobol particles in 8 replicas (float32), "
          f"{CLOCKS[_CLOCK]() - t0:.1f} s, stated relative standard error {ref.mc_error:.1e}")
    return ref.residuals


def _err_time(fn, ref, seeds) -> tuple[float, float]:
    """rms over seeds of the relative error of fn(seed).residuals, and the median time."""
    errs, ts = [], []
    for sd in seeds:
        t0 = CLOCKS[_CLOCK]()
        r = fn(sd)
        ts.append(CLOCKS[_CLOCK]() - t0)
        errs.append(_rel(r.residuals, ref))
    return float(np.sqrt(np.mean(np.square(errs)))), float(np.median(ts))


def variants(quick: bool, X=None, y=None, ref=None) -> None:
    if ref is None:
        X, y = _two_layer_problem()
        ref = _reference(X, y, quick)
    seeds = range(3 if quick else 6)
    Ss = [2**10, 2**12, 2**14] if quick else [2**10, 2**12, 2**14, 2**16]
    table = {
        "forward sobol (2 reps)": lambda S, sd: two_layer(X, y, samples=S, replicas=2, seed=sd, **_KW),
        "forward sobol float32 ": lambda S, sd: two_layer(X, y, samples=S, replicas=2, precision="float32", seed=sd,
                                                         **_KW),
        "forward iid (2 reps)": lambda S, sd: two_layer(X, y, samples=S, replicas=2, sampler="random", seed=sd, **_KW),
        "iterate (fresh iid)": lambda S, sd: two_layer(X, y, samples=S, method="iterate", replicas=1, seed=sd, **_KW),
    }
    print(f"variants: rms relative error of Delta(t) over {len(seeds)} seeds / median seconds (samples in all)")
    print(f"  {'variant':<24}" + "".join(f"{S:>18}" for S in Ss) + f"{'err slope':>11}{'time slope':>11}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, fn in table.items():
            cells = [_err_time(lambda sd, S=S: fn(S, sd), ref, seeds) for S in Ss]
            es, ts = zip(*cells)
            se = np.polyfit(np.log(Ss), np.log(es), 1)[0]
            st = np.polyfit(np.log(Ss), np.log(ts), 1)[0]
            print(f"  {name:<24}" + "".join(f"{e:>9.2e} {t:>7.3f}s" for e, t in cells) + f"{se:>+11.2f}{st:>+11.2f}")
            REC.measure(f"variants/{name.strip()}/error_slope", se)
            REC.measure(f"variants/{name.strip()}/time_slope", st)
    print()


def _cheapest_solver(X, y, ref, target, seeds, precision="float64"):
    """Smallest power-of-two sample count (default forward solver, 8 replicas) whose rms error
    over seeds is <= target: (samples, error)."""
    for k in range(7, 24):
        err, _ = _err_time(lambda sd: two_layer(X, y, samples=2**k, seed=sd, precision=precision, **_KW), ref, seeds)
        if err <= target:
            return 2**k, err
    return None, None


def _cheapest_ensemble(X, y, ref, target, widths, max_E, **kw):
    """Per width: (E, error) of the smallest seed ensemble within target of ref, or None."""
    out = {}
    for N in widths:
        pool = train_mean_field(X, y, width=N, seeds=range(max_E), track_kernels=False, **kw).residual
        out[N] = None
        E = 1
        while E <= max_E:
            groups = [pool[i : i + E].mean(0) for i in range(0, max_E - E + 1, E)]
            err = float(np.mean([_rel(g, ref) for g in groups]))
            if err <= target:
                out[N] = (E, err)
                break
            E *= 2
        print(f"    width {N:>6}: bias {_rel(pool.mean(0), ref):.4f}, "
              + (f"E = {out[N][0]} reaches {out[N][1]:.4f}" if out[N] else f"> {max_E} networks needed"))
    return out


def _fastest_ensemble(X, y, ens, kw) -> float | None:
    """Seconds of the fastest ensemble that reached the error (``ens``: width -> (E, error) or None)."""
    times = [_timed([lambda N=N, E=hit[0]: train_mean_field(X, y, width=N, seeds=range(E), track_kernels=False,
                                                             **kw)], repeats=1)[0] for N, hit in ens.items() if hit]
    return min(times) if times else None


def goals(quick: bool) -> None:
    X, y = _two_layer_problem()
    ref = _reference(X, y, quick)
    variants(quick, X, y, ref)
    seeds = range(3)
    # (a) one width-4096 network
    nets = train_mean_field(X, y, width=4096, seeds=range(8), track_kernels=False, **_KW).residual
    target = float(np.mean([_rel(d, ref) for d in nets]))
    S, err = _cheapest_solver(X, y, ref, target, seeds)
    S32, err32 = _cheapest_solver(X, y, ref, target, seeds, precision="float32")
    # the solver returns what the network run returns: residuals and predictions, no kernels
    t_sol, t_sol32, t_net = _timed([lambda: two_layer(X, y, samples=S, seed=0, track_kernels=False, **_KW),
                                    lambda: two_layer(X, y, samples=S32, seed=0, precision="float32",
                                                      track_kernels=False, **_KW),
                                    lambda: train_mean_field(X, y, width=4096, seeds=[0], track_kernels=False, **_KW)],
                                   repeats=5)
    print(f"(a) one width-4096 network: error {target:.4f} (mean of 8 seeds), {t_net:.4f} s to train")
    for name, s_, e_, t_, key in (("default (float64)", S, err, t_sol, "goal_a/network_over_solver"),
                                  ("precision='float32'", S32, err32, t_sol32, "goal_a/network_over_solver_float32")):
        print(f"    solver {name}: {e_:.4f} with {s_} particles in {t_:.4f} s; network / solver = {t_net / t_:.1f} "
              f"(goal >= 10: {'met' if t_net / t_ >= 10 else 'NOT met'})")
        REC.ratio(key, t_net / t_)
    # (c) N -> infinity to 0.1 %
    S, err = _cheapest_solver(X, y, ref, 1e-3, seeds)
    (t_sol,) = _timed([lambda: two_layer(X, y, samples=S, seed=0, track_kernels=False, **_KW)], repeats=3)
    print(f"(c) 0.1% of the N -> infinity answer: solver {S} particles, error {err:.5f}, {t_sol:.3f} s; ensembles:")
    ens = _cheapest_ensemble(X, y, ref, 1e-3, (1024, 4096) if quick else (1024, 4096, 16384), 32 if quick else 64,
                             **_KW)
    best = _fastest_ensemble(X, y, ens, _KW)
    print(f"    fastest ensemble at 0.1%: {'none reaches it' if best is None else f'{best:.3f} s'}; goal (solver "
          f"faster than any ensemble): {'met' if best is None or best > t_sol else 'NOT met'}"
          + ("" if best is None else f" (ratio {best / t_sol:.1f})"))
    if best is None:
        REC.skip("goal_c/ensemble_over_solver", "no ensemble reaches 0.1% of the N -> infinity answer")
    else:
        REC.ratio("goal_c/ensemble_over_solver", best / t_sol)
    # (b) deep, L = 2
    Xd, yd, _, _ = _sphere_task(4, 0, 8)
    dkw = dict(depth=2, gamma0=1.5, lr=0.4, steps=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = CLOCKS[_CLOCK]()
        dref = deep(Xd, yd, samples=8000 if quick else 16000, response_samples=2000 if quick else 4000, replicas=8,
                    seed=99, **dkw)
        t_ref = CLOCKS[_CLOCK]() - t0
        errs, ts = [], []
        for sd in seeds:
            t0 = CLOCKS[_CLOCK]()
            r = deep(Xd, yd, seed=sd, **dkw)
            ts.append(CLOCKS[_CLOCK]() - t0)
            errs.append(_rel(r.residuals, dref.residuals))
    eps = float(np.sqrt(np.mean(np.square(errs))))
    t_deep = float(np.median(ts))
    print(f"(b) deep L = 2 (P = 4, 10 steps): reference ({dref.samples} samples x 8 replicas) {t_ref:.1f} s, "
          f"stated error "
          f"{dref.mc_error:.1e}; default solver error {eps:.4f} in {t_deep:.2f} s; ensembles:")
    ens = _cheapest_ensemble(Xd, yd, dref.residuals, eps, (256, 1024), 32, **dkw)
    best = _fastest_ensemble(Xd, yd, ens, dkw)
    print(f"    fastest equal-error ensemble: {'none' if best is None else f'{best:.3f} s'}; goal (solver at least "
          f"as fast): {'met' if best is None or best >= t_deep else 'NOT met'}"
          + ("" if best is None else f" (ensemble / solver = {best / t_deep:.2f})"))
    if best is None:
        REC.skip("goal_b/ensemble_over_solver", "no ensemble reaches the deep solver's error")
    else:
        REC.ratio("goal_b/ensemble_over_solver", best / t_deep)
    print()


def _per_sweep(fn, sweeps: int) -> float:
    t0 = CLOCKS[_CLOCK]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fn(max_sweeps=sweeps, average=1, noise_factor=0.0, tol=0.0)
    return (CLOCKS[_CLOCK]() - t0) / (sweeps + 1)


def _pass(fn) -> float:
    return min(_timed([fn], repeats=2))


def _fit(name: str, xs, ts, prefix: str = "") -> None:
    slope = np.polyfit(np.log(xs), np.log(ts), 1)[0]
    REC.measure(f"scaling/{prefix}{name}", slope)
    cells = "  ".join(f"{x:g}: {t * 1e3:8.1f} ms" for x, t in zip(xs, ts))
    print(f"  {name:<10} {cells}   exponent {slope:+.2f}")


def scaling(quick: bool) -> None:
    sweeps = 2 if quick else 4
    print("two_layer (forward): seconds per pass")
    X8, y8, _, _ = _sphere_task(8, 0, 10)
    Ps = [4, 8, 16, 32]
    ts = []
    for P in Ps:
        X, y, _, _ = _sphere_task(P, 0, 10)
        ts.append(_pass(lambda: two_layer(X, y, gamma0=1.5, lr=0.1, steps=50, samples=2**14)))
    _fit("P", Ps, ts, "two_layer/")
    Ts = [25, 50, 100, 200]
    ts = [_pass(lambda: two_layer(X8, y8, gamma0=1.5, lr=10 / T, steps=T, samples=2**14)) for T in Ts]
    _fit("T", Ts, ts, "two_layer/")
    Ss = [2**12, 2**13, 2**14, 2**15]
    ts = [_pass(lambda: two_layer(X8, y8, gamma0=1.5, lr=0.1, steps=50, samples=S)) for S in Ss]
    _fit("samples", Ss, ts, "two_layer/")

    print("deep (L = 2): seconds per sweep (fixed sweep count, no continuation)")
    X4, y4, _, _ = _sphere_task(4, 0, 8)
    dkw = dict(depth=2, gamma0=1.5, continuation=None, replicas=1)
    Ts = [5, 10, 20] if quick else [5, 10, 20, 40]
    ts = [_per_sweep(lambda **k: deep(X4, y4, lr=4.0 / T, steps=T, samples=2000, response_samples=500, **dkw, **k),
                     sweeps) for T in Ts]
    _fit("T", Ts, ts, "deep/")
    Ps = [2, 4, 8]
    ts = []
    for P in Ps:
        X, y, _, _ = _sphere_task(P, 0, 8)
        ts.append(_per_sweep(lambda **k: deep(X, y, lr=0.2, steps=10, samples=2000, response_samples=500, **dkw, **k),
                             sweeps))
    _fit("P", Ps, ts, "deep/")
    Ss = [1000, 2000, 4000, 8000]
    ts = [_per_sweep(lambda **k: deep(X4, y4, lr=0.2, steps=10, samples=S, response_samples=S // 4, **dkw, **k),
                     sweeps) for S in Ss]
    _fit("samples", Ss, ts, "deep/")
    print()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a minute or two)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["variants", "goals", "scaling"], default=None)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall-clock time or this process's CPU time (use with --threads 1 on a busy machine)")
    add_json_argument(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    global _CLOCK
    _CLOCK = args.clock
    print(f"clock: {args.clock}, threads: {args.threads}")
    if args.only == "variants":
        variants(args.quick)
    if args.only in (None, "goals"):
        goals(args.quick)
    if args.only in (None, "scaling"):
        scaling(args.quick)
    REC.detail("clock", args.clock)
    REC.write(args.json)
    return REC.to_dict()


if __name__ == "__main__":
    main()
