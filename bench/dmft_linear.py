"""Deep-linear DMFT, learning-rule DMFT and finite-width theory: solver vs simulation cost.

Printed (all timings medians of interleaved rounds, so machine load affects both sides alike):

1. theory vs simulation for the claims' settings: the solver's time against the time of the
   simulated ensemble that the claim compares with (and the error that ensemble reaches);
2. the exact causal deep-linear solver against the Picard iteration with time continuation
   (the paper's algorithm) on the same problem (they agree to round-off);
3. cost scaling of the causal solver in T (steps) and P (points) with fitted exponents
   (expected: T^3, P^3 once the O((TM)^2) bookkeeping is amortised);
4. finite-width theory (Wishart exact, particles) against measuring N Var[f] with seeds.

    python bench/dmft_linear.py [--repeats 3] [--threads 1] [--quick] [--json PATH]

``--json PATH`` also writes every ratio (``theory_vs_sim/<case>``: sim/theory,
``causal_vs_picard/<case>``: Picard/causal, ``finite_width/<case>``: seeds/theory), the errors and
the fitted cost exponents as data (bench/_results.py).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import Recorder, add_json_argument  # noqa: E402
from _timing import interleaved  # noqa: E402

from lmech.sim.mean_field import sphere_regression_task as _task  # noqa: E402
from lmech.sim.learning_rules import train_learning_rule  # noqa: E402
from lmech.sim.mean_field import train_mean_field  # noqa: E402
from lmech.theory.dmft.deep_linear import deep_linear  # noqa: E402
from lmech.theory.dmft.finite_width import two_layer_fluctuations  # noqa: E402
from lmech.theory.dmft.learning_rules import learning_rule_dynamics  # noqa: E402


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def theory_vs_sim(repeats: int, quick: bool, rec: Recorder) -> None:
    print("\n== theory vs simulation (same curve) ==")
    print(f"{'case':<44} {'theory s':>9} {'sim s':>9} {'sim/theory':>10} {'sim err':>8}")
    X, y, Xt, yt = _task(6, 4, 10, 1)
    N, E, T = (1024, 8, 40) if quick else (4096, 4, 60)
    out = {}

    def th():
        out["th"] = deep_linear(X, y, depth=2, gamma0=1.5, lr=0.1, steps=T, X_test=Xt, y_test=yt, check=False)

    def sim():
        out["sim"] = train_mean_field(X, y, width=N, depth=2, gamma0=1.5, lr=0.1, steps=T, activation="linear",
                                      X_test=Xt, y_test=yt, seeds=range(E), track_kernels=False)

    t_th, t_sim = interleaved([th, sim], repeats=repeats, warmup=0)
    err = _rel(out["sim"].train_loss.mean(0), out["th"].train_loss)
    print(f"{f'deep linear L=2 T={T} (N={N}, {E} seeds)':<44} {t_th:>9.3f} {t_sim:>9.2f} {t_sim / t_th:>10.1f} {err:>8.3f}")
    _record(rec, "theory_vs_sim/deep_linear", t_th, t_sim, err, N=N, seeds=E, steps=T)

    X, y, Xt, yt = _task(8, 4, 10, 1)
    for rule in ("fa", "hebb"):
        Nr = 1024

        def th_r(rule=rule):
            out["th"] = learning_rule_dynamics(X, y, rule=rule, depth=2, gamma0=1.0, lr=0.2, steps=30, rho=0.5,
                                               X_test=Xt)

        def sim_r(rule=rule):
            out["sim"] = train_learning_rule(X, y, rule=rule, width=Nr, depth=2, gamma0=1.0, lr=0.2, steps=30,
                                             activation="linear", rho=0.5, X_test=Xt, seeds=range(8))

        t_th, t_sim = interleaved([th_r, sim_r], repeats=repeats, warmup=0)
        err = _rel(out["sim"].train_loss.mean(0), out["th"].train_loss)
        print(f"{f'{rule} deep linear L=2 T=30 (N={Nr}, 8 seeds)':<44} {t_th:>9.3f} {t_sim:>9.2f} "
              f"{t_sim / t_th:>10.1f} {err:>8.3f}")
        _record(rec, f"theory_vs_sim/{rule}_deep_linear", t_th, t_sim, err, N=Nr, seeds=8, steps=30)
    for rule in ("gd", "dfa"):
        def th_p(rule=rule):
            out["th"] = learning_rule_dynamics(X, y, rule=rule, gamma0=1.0, lr=0.2, steps=30, activation="tanh",
                                               X_test=Xt, samples=100_000)

        def sim_p(rule=rule):
            out["sim"] = train_learning_rule(X, y, rule=rule, width=4096, gamma0=1.0, lr=0.2, steps=30,
                                             activation="tanh", X_test=Xt, seeds=range(8))

        t_th, t_sim = interleaved([th_p, sim_p], repeats=repeats, warmup=0)
        err = _rel(out["sim"].train_loss.mean(0), out["th"].train_loss)
        print(f"{f'{rule} two-layer tanh T=30 (N=4096, 8 seeds)':<44} {t_th:>9.3f} {t_sim:>9.2f} "
              f"{t_sim / t_th:>10.1f} {err:>8.3f}")
        _record(rec, f"theory_vs_sim/{rule}_two_layer_tanh", t_th, t_sim, err, N=4096, seeds=8, steps=30)


def _record(rec: Recorder, key: str, t_th: float, t_sim: float, err: float, **info) -> None:
    rec.ratio(key, t_sim / t_th)
    rec.measure(f"{key}/sim_error", err)
    rec.detail(key, {"theory_s": t_th, "sim_s": t_sim, **info})


def causal_vs_picard(repeats: int, quick: bool, rec: Recorder) -> None:
    print("\n== deep linear: causal time stepping vs Picard with continuation (same answer) ==")
    X, y, _, _ = _task(6, 0, 10, 1)
    for L, T in ((2, 20), (2, 40)) if quick else ((2, 20), (2, 40), (3, 60)):
        out = {}

        def causal():
            out["c"] = deep_linear(X, y, depth=L, gamma0=1.5, lr=0.1, steps=T, check=False)

        def picard():
            out["p"] = deep_linear(X, y, depth=L, gamma0=1.5, lr=0.1, steps=T, method="picard", chunk=5, check=False)

        t_c, t_p = interleaved([causal, picard], repeats=repeats, warmup=0)
        diff = np.abs(out["c"].f_train - out["p"].f_train).max()
        print(f"L={L} T={T:<3} P=6: causal {t_c:8.3f}s  picard {t_p:8.3f}s  speed-up {t_p / t_c:6.1f}x "
              f"({out['p'].iterations} sweeps)  max|diff f| {diff:.1e}")
        rec.ratio(f"causal_vs_picard/L={L}_T={T}", t_p / t_c)
        rec.measure(f"causal_vs_picard/L={L}_T={T}/max_diff", diff)
        rec.detail(f"causal_vs_picard/L={L}_T={T}", {"causal_s": t_c, "picard_s": t_p, "sweeps": out["p"].iterations})


def scaling(quick: bool, rec: Recorder) -> None:
    print("\n== causal solver cost scaling (depth 2) ==")
    X, y, _, _ = _task(24, 0, 10, 1)

    def timed(P, T):
        t0 = time.perf_counter()
        deep_linear(X[:P], y[:P], depth=2, gamma0=1.0, lr=0.1, steps=T, check=False)
        return time.perf_counter() - t0

    Ts = (20, 40, 80) if quick else (25, 50, 100, 200)
    tt = [timed(6, T) for T in Ts]
    slope_T = np.polyfit(np.log(Ts), np.log(tt), 1)[0]
    print("steps  " + "  ".join(f"T={T}: {t:.2f}s" for T, t in zip(Ts, tt)) + f"   fitted exponent {slope_T:.2f}")
    rec.measure("scaling/causal/T", slope_T)
    rec.detail("scaling/causal/T", {"x": list(Ts), "seconds": tt})
    Ps = (6, 12, 24)
    tp = [timed(P, 30) for P in Ps]
    slope_P = np.polyfit(np.log(Ps), np.log(tp), 1)[0]
    print("points " + "  ".join(f"P={P}: {t:.2f}s" for P, t in zip(Ps, tp)) + f"   fitted exponent {slope_P:.2f}")
    rec.measure("scaling/causal/P", slope_P)
    rec.detail("scaling/causal/P", {"x": list(Ps), "seconds": tp})


def finite_width(repeats: int, quick: bool, rec: Recorder) -> None:
    print("\n== finite-width variance: theory vs measuring it with seeds ==")
    X, y, Xt, yt = _task(6, 3, 10, 1)
    out = {}
    T = 15
    S = 1000 if quick else 4000

    def wishart():
        out["w"] = two_layer_fluctuations(X, y, gamma0=1.5, lr=0.2, steps=T, X_test=Xt, y_test=yt)

    def particles():
        out["p"] = two_layer_fluctuations(X, y, gamma0=1.5, lr=0.2, steps=T, activation="tanh", X_test=Xt,
                                          y_test=yt, samples=20_000, jacobian_samples=2000)

    def seeds_lin():
        out["sl"] = train_mean_field(X, y, width=256, gamma0=1.5, lr=0.2, steps=T, activation="linear", X_test=Xt,
                                     y_test=yt, seeds=range(S), track_kernels=False)

    def seeds_tanh():
        out["st"] = train_mean_field(X, y, width=256, gamma0=1.5, lr=0.2, steps=T, activation="tanh", X_test=Xt,
                                     y_test=yt, seeds=range(S), track_kernels=False)

    t = interleaved([wishart, particles, seeds_lin, seeds_tanh], repeats=repeats, warmup=1)
    for name, key, tt, ts in (("linear (Wishart, exact)", "w", t[0], t[2]), ("tanh (particles)", "p", t[1], t[3])):
        r = out[key]
        run = out["sl" if key == "w" else "st"]
        f = np.concatenate([run.f_train, run.f_test], 2)
        err = _rel(256 * f.var(0, ddof=1), np.concatenate([r.var_f_train, r.var_f_test], 1))
        print(f"{name:<26} theory {tt:7.2f}s   {S} seeds at N=256: {ts:7.2f}s (x{ts / tt:.1f}), "
              f"N Var rel. diff {err:.3f}")
        label = "linear_wishart" if key == "w" else "tanh_particles"
        rec.ratio(f"finite_width/{label}", ts / tt)
        rec.measure(f"finite_width/{label}/var_rel_diff", err)
        rec.detail(f"finite_width/{label}", {"theory_s": tt, "seeds_s": ts, "seeds": S, "width": 256})


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a minute or two)")
    add_json_argument(ap)
    args = ap.parse_args(argv)
    rec = Recorder()
    torch.set_num_threads(args.threads)
    theory_vs_sim(args.repeats, args.quick, rec)
    causal_vs_picard(args.repeats, args.quick, rec)
    scaling(args.quick, rec)
    finite_width(args.repeats, args.quick, rec)
    rec.detail("settings", {"repeats": args.repeats, "threads": args.threads, "quick": args.quick})
    rec.write(args.json)
    return rec.to_dict()


if __name__ == "__main__":
    main()
