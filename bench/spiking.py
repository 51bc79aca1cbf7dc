"""Speed of the spiking-network simulator and of one PSPM epoch (no theory to compare with).

PSPM is a learning procedure, not a solvable theory: there is no theory-vs-simulation ratio.
This measures what the issue asks of the simulator instead: 400 LIF neurons for 5000 steps
per trial (target: well under a second on one core), and one PSPM epoch (two networks
simulated, spikes paired, weights updated).

    python bench/spiking.py [--repeats N] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Recorder, add_json_argument  # noqa: E402


def measure(repeats: int = 3) -> dict[str, float]:
    from lmech.sim import spiking as sp

    n, steps = 400, 5000
    u = sp.lif_inputs(n, steps, seed=1)
    W, inhib = sp.reference_weights(n, 0.05, sparsity=0.4, seed=2)
    L, _ = sp.reference_weights(n, 0.06, seed=3, inhibitory_idx=inhib)
    sim = []
    for _ in range(repeats):
        t = time.perf_counter()
        sp.simulate_lif(W, u)
        sim.append(time.perf_counter() - t)
    t = time.perf_counter()
    sp.train_pspm(W, L, inhib, u, epochs=2)
    epoch = (time.perf_counter() - t) / 3  # the target, and 3 evaluations of learner + control
    return {"lif_400x5000_seconds": float(np.median(sim)), "pspm_epoch_400x5000_seconds": epoch}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repeat")
    add_json_argument(ap)
    args = ap.parse_args(argv)
    res = measure(1 if args.quick else args.repeats)
    for k, v in res.items():
        print(f"{k:34s} {v:8.3f}")
    rec = Recorder()
    rec.skip("theory_vs_sim", "PSPM is a learning procedure without a solvable theory: nothing to compare")
    for k, v in res.items():
        rec.detail(k, v)
    rec.measure("lif_400x5000_trials_per_second", 1.0 / res["lif_400x5000_seconds"])
    rec.write(args.json)
    return rec.to_dict()


if __name__ == "__main__":
    main()
