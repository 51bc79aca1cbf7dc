"""Nonlinear DMFT solver: cost vs simulating networks, and cost scaling.

1. Solver vs ensemble. The two-layer tanh problem of ``dmft.two_layer.tanh`` (P = 8, 100 GD
   steps). A high-accuracy DMFT solve (many samples, long averaging) is the reference; the
   default solver's error against it is eps. For each width N the bench then times the
   smallest ensemble of width-N networks whose seed-averaged residual trajectory is within eps
   of the reference (error = finite-width bias + seed variance / E) and prints the time
   ratio. Widths whose bias alone exceeds eps cannot reach it at any ensemble size.
2. Scaling. Time per sweep of ``two_layer`` against P, T (steps) and samples S, and of
   ``deep`` (L = 2) against T, P and S, with fitted log-log exponents (expected: two-layer
   ~ S^1 T^1 and between P^1 and P^2; deep ~ T^2-T^3 from the pathwise Jacobian).

    python bench/dmft.py [--quick] [--threads 1] [--only ensemble|scaling] [--clock wall|cpu] [--json PATH]

``--json PATH`` also writes the ensemble/solver ratios per width (``ensemble/N=<N>``), the solver
error and the fitted cost exponents (``scaling/<solver>/<variable>``) as data (bench/_results.py).

Timings are medians (interleaved where two things are compared) of wall-clock time, or with
``--clock cpu`` of this process's CPU time (with ``--threads 1`` that is the work done, which
stays meaningful on a loaded shared machine where wall time is inflated by waiting); ratios
and exponents are what matter.
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


def _timed(fns, repeats: int) -> list[float]:
    """Median time of each function over interleaved rounds, on the selected clock."""
    return interleaved(fns, repeats=repeats, warmup=0, clock=_CLOCK)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def solver_vs_ensemble(quick: bool, rec: Recorder) -> None:
    X, y, _, _ = _sphere_task(8, 0, 10)
    kw = dict(gamma0=1.5, lr=0.1, steps=100)
    t0 = CLOCKS[_CLOCK]()
    ref = two_layer(X, y, samples=50000 if quick else 200000, average=10, seed=123, **kw)
    t_ref = CLOCKS[_CLOCK]() - t0
    S = 20000

    def solve():
        return two_layer(X, y, samples=S, seed=7, **kw)

    sol = solve()
    eps = _rel(sol.residuals, ref.residuals)
    print(f"reference DMFT ({ref.samples} samples x {ref.iterations} sweeps): {t_ref:.1f} s, "
          f"MC error estimate {ref.mc_error:.2e}")
    print(f"default solver (S = {S}): error vs reference eps = {eps:.4f}\n")
    rec.measure("ensemble/solver_error", eps)
    rec.detail("ensemble/reference", {"seconds": t_ref, "samples": ref.samples, "mc_error": ref.mc_error})
    print(f"{'width':>7} {'bias':>8} {'E needed':>9} {'ens. err':>9} {'solver s':>9} {'ensemble s':>11} {'ens/solver':>11}")
    max_E = 64 if quick else 256
    for N in (256, 1024, 4096) if quick else (256, 1024, 4096, 16384):
        pool = train_mean_field(X, y, width=N, seeds=range(max_E), track_kernels=False, **kw).residual
        # bias estimate: error of the full pool average (its own variance / max_E is small)
        bias = _rel(pool.mean(0), ref.residuals)
        need = None
        for E in (1, 2, 4, 8, 16, 32, 64, 128, 256):
            if E > max_E:
                break
            # average the error over disjoint groups of E seeds
            groups = [pool[i : i + E].mean(0) for i in range(0, max_E - E + 1, E)]
            err = float(np.mean([_rel(g, ref.residuals) for g in groups]))
            if err <= eps:
                need = (E, err)
                break
        if need is None:
            print(f"{N:>7} {bias:>8.4f} {'> ' + str(max_E):>9} {'-':>9} {'-':>9} {'-':>11} {'unreachable':>11}")
            rec.measure(f"ensemble/N={N}/bias", bias)
            rec.skip(f"ensemble/N={N}", f"no ensemble of up to {max_E} networks reaches the solver's error {eps:.4f} "
                     f"(finite-width bias {bias:.4f})")
            continue
        E, err = need

        def ensemble(E=E, N=N):
            return train_mean_field(X, y, width=N, seeds=range(E), track_kernels=False, **kw)

        t_sol, t_ens = _timed([solve, ensemble], repeats=1 if quick else 3)
        print(f"{N:>7} {bias:>8.4f} {E:>9} {err:>9.4f} {t_sol:>9.2f} {t_ens:>11.2f} {t_ens / t_sol:>11.2f}")
        rec.ratio(f"ensemble/N={N}", t_ens / t_sol)
        rec.measure(f"ensemble/N={N}/bias", bias)
        rec.detail(f"ensemble/N={N}", {"networks": E, "error": err, "solver_s": t_sol, "ensemble_s": t_ens})
    print()


def _per_sweep(fn, sweeps: int) -> float:
    t0 = CLOCKS[_CLOCK]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fn(max_sweeps=sweeps, average=1, noise_factor=0.0, tol=0.0)
    return (CLOCKS[_CLOCK]() - t0) / (sweeps + 1)


def _fit(name: str, xs, ts, rec: Recorder | None = None, key: str = "") -> None:
    slope = np.polyfit(np.log(xs), np.log(ts), 1)[0]
    cells = "  ".join(f"{x:g}: {t * 1e3:8.1f} ms" for x, t in zip(xs, ts))
    print(f"  {name:<10} {cells}   exponent {slope:+.2f}")
    if rec is not None:
        rec.measure(key, slope)
        rec.detail(key, {"x": list(xs), "seconds_per_sweep": list(ts)})


def scaling(quick: bool, rec: Recorder) -> None:
    sweeps = 2 if quick else 4
    print("two_layer: seconds per sweep (fixed sweep count)")
    X8, y8, _, _ = _sphere_task(8, 0, 10)
    Ps = [4, 8, 16, 32]
    ts = []
    for P in Ps:
        X, y, _, _ = _sphere_task(P, 0, 10)
        ts.append(_per_sweep(lambda **k: two_layer(X, y, gamma0=1.5, lr=0.1, steps=50, samples=10000, **k), sweeps))
    _fit("P", Ps, ts, rec, "scaling/two_layer/P")
    Ts = [25, 50, 100, 200]
    ts = [_per_sweep(lambda **k: two_layer(X8, y8, gamma0=1.5, lr=10 / T, steps=T, samples=10000, **k), sweeps)
          for T in Ts]
    _fit("T", Ts, ts, rec, "scaling/two_layer/T")
    Ss = [5000, 10000, 20000, 40000]
    ts = [_per_sweep(lambda **k: two_layer(X8, y8, gamma0=1.5, lr=0.1, steps=50, samples=S, **k), sweeps) for S in Ss]
    _fit("samples", Ss, ts, rec, "scaling/two_layer/samples")

    print("deep (L = 2): seconds per sweep (fixed sweep count, no continuation)")
    X4, y4, _, _ = _sphere_task(4, 0, 8)
    dkw = dict(depth=2, gamma0=1.5, continuation=None)
    Ts = [5, 10, 20] if quick else [5, 10, 20, 40]
    ts = [_per_sweep(lambda **k: deep(X4, y4, lr=4.0 / T, steps=T, samples=2000, response_samples=500, **dkw, **k),
                     sweeps) for T in Ts]
    _fit("T", Ts, ts, rec, "scaling/deep/T")
    Ps = [2, 4, 8]
    ts = []
    for P in Ps:
        X, y, _, _ = _sphere_task(P, 0, 8)
        ts.append(_per_sweep(lambda **k: deep(X, y, lr=0.2, steps=10, samples=2000, response_samples=500, **dkw, **k),
                             sweeps))
    _fit("P", Ps, ts, rec, "scaling/deep/P")
    Ss = [1000, 2000, 4000, 8000]
    ts = [_per_sweep(lambda **k: deep(X4, y4, lr=0.2, steps=10, samples=S, response_samples=S // 4, **dkw, **k),
                     sweeps) for S in Ss]
    _fit("samples", Ss, ts, rec, "scaling/deep/samples")
    print()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a minute or two)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["ensemble", "scaling"], default=None)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall-clock time or this process's CPU time (use with --threads 1 on a busy machine)")
    add_json_argument(ap)
    args = ap.parse_args(argv)
    rec = Recorder()
    torch.set_num_threads(args.threads)
    global _CLOCK
    _CLOCK = args.clock
    print(f"clock: {args.clock}, threads: {args.threads}")
    if args.only in (None, "ensemble"):
        solver_vs_ensemble(args.quick, rec)
    if args.only in (None, "scaling"):
        scaling(args.quick, rec)
    rec.detail("settings", {"clock": args.clock, "threads": args.threads, "quick": args.quick})
    rec.write(args.json)
    return rec.to_dict()


if __name__ == "__main__":
    main()
