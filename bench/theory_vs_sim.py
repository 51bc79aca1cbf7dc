"""Per paper family: theory time, simulation time and their ratio for the same curve.

Each module in bench/tvs/ defines ``CASES``, a list of ``(name, theory_fn, sim_fn)`` where
both callables compute the same curve (the theory prediction and the simulation that a
claim compares it with). Both are timed in one run, interleaved.

    python bench/theory_vs_sim.py [--only FAMILY ...] [--repeats N] [--json PATH]

``--json PATH`` also writes the ratios (``"<family>/<case>"``: sim/theory) and the times as data
(bench/_results.py); bench/run_all.py runs this once per family.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _results import Recorder, add_json_argument  # noqa: E402
from _timing import interleaved  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="family modules to run (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    add_json_argument(ap)
    args = ap.parse_args(argv)
    rec = Recorder()
    torch.set_num_threads(args.threads)
    import tvs

    families = sorted(m.name for m in pkgutil.iter_modules(tvs.__path__) if not m.name.startswith("_"))
    if args.only:
        families = [f for f in families if f in args.only]
    print(f"{'family':<12} {'case':<34} {'theory s':>10} {'sim s':>10} {'sim/theory':>11}")
    for fam in families:
        mod = importlib.import_module(f"tvs.{fam}")
        for name, theory_fn, sim_fn in mod.CASES:
            t_theory, t_sim = interleaved([theory_fn, sim_fn], repeats=args.repeats, warmup=1)
            print(f"{fam:<12} {name:<34} {t_theory:>10.4f} {t_sim:>10.3f} {t_sim / t_theory:>11.1f}", flush=True)
            rec.ratio(f"{fam}/{name}", t_sim / t_theory)
            rec.detail(f"{fam}/{name}", {"theory_s": t_theory, "sim_s": t_sim})
            rec.write(args.json)  # after every case: a run stopped by a timeout keeps what finished
    rec.detail("repeats", args.repeats)
    rec.detail("threads", args.threads)
    rec.write(args.json)
    return rec.to_dict()


if __name__ == "__main__":
    main()
