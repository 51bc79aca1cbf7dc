"""``lmech scaling fit``: fit a scaling law to your own runs.

Exit status: 0 when the fit converged, 1 when it did not (the results are still written), 2 on
a usage error (bad flags, a bad runs file: the message names the column and the row).
Writes ``fit.json`` (parameters, bootstrap intervals, compute-optimal exponents and frontier,
leave-largest-out check) and ``scaling_fit.png``. Importing this module imports no numpy-heavy
or torch code (the CLI builds every parser on each call).
"""
from __future__ import annotations

import argparse
import json

from lmech import _argtypes as argtypes

__all__ = ["add_parser"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "scaling",
        help="fit a scaling law (Chinchilla or precision-aware) to your runs",
        description="Practitioner tools for scaling laws.",
    )
    sub = p.add_subparsers(dest="scaling_command", metavar="ACTION", required=True)
    f = sub.add_parser(
        "fit",
        help="fit L(N, D) to runs in a CSV file, with bootstrap intervals and the compute-optimal frontier",
        description="Fit L = E + A/N^alpha + B/D^beta (--form chinchilla) or the precision-aware law with "
        "N_eff = N (1 - exp(-bits/gamma)) (--form precision) to runs: Huber loss (delta 1e-3) on log loss, "
        "L-BFGS from a grid of starting points, parameters in log space. Intervals: percentile bootstrap over "
        "runs. Compute-optimal N*(C), D*(C) for C = 6ND with bands, and a leave-largest-out check (fit without "
        "the largest-compute runs, predict them).",
    )
    f.add_argument("runs", help="CSV file with a header row and columns N, D, loss (and bits for --form precision)")
    f.add_argument("--out", default="runs/scaling_fit", help="output folder (default runs/scaling_fit)")
    f.add_argument("--form", choices=("chinchilla", "precision"), default="chinchilla")
    f.add_argument("--bootstrap", type=argtypes.nonnegative_int, default=200,
                   help="bootstrap resamples of the runs (default 200; 0: no intervals)")
    f.add_argument("--seed", type=argtypes.nonnegative_int, default=0, help="seed of the resampling (default 0)")
    f.add_argument("--level", type=argtypes.positive_float, default=0.9,
                   help="coverage of the intervals, in (0, 1) (default 0.9)")
    f.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of runs (largest compute first) left out for the check (default 0.2; 0 skips)")
    f.add_argument("--no-plot", action="store_true", help="write only fit.json")
    f.set_defaults(handler=_run_fit)
    return p


def _run_fit(args: argparse.Namespace) -> int:
    from lmech._errors import UsageError
    from lmech.scaling import fit, read_runs

    out = argtypes.output_dir(args.out)  # before the work: a bad --out is a usage error
    try:
        runs = read_runs(args.runs, form=args.form)
        result = fit(runs["N"], runs["D"], runs["loss"], runs["bits"], form=args.form, bootstrap=args.bootstrap,
                     seed=args.seed, level=args.level, holdout=args.holdout)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    (out / "fit.json").write_text(json.dumps(result.to_dict(), indent=1))
    if not args.no_plot:
        result.plot(out / "scaling_fit.png")
    print(f"{result.form} fit to {result.n_runs} runs ({result.message}); "
          f"{result.level:.0%} bootstrap intervals over {result.bootstrap_samples.shape[0]} resamples:")
    for k in result.names + ("a", "b"):
        v = result.params[k] if k in result.params else dict(zip("ab", result.exponents))[k]
        lo, hi = result.intervals[k]
        print(f"  {k:>6} = {v:<12.5g} [{lo:.5g}, {hi:.5g}]")
    print("  (N* ~ C^a, D* ~ C^b at C = 6ND)")
    h = result.holdout
    if h is not None:
        if h.n_held:
            print(f"leave-largest-out: {h.n_held} largest-compute runs predicted with relative error "
                  f"mean {h.mean_rel_error:.3%}, max {h.max_rel_error:.3%}")
        else:
            print(f"leave-largest-out: {h.message}")
    print(f"results: {out / 'fit.json'}")
    return 0 if result.converged else 1
