"""Kernel learning-curve theory: time of one curve, and simulation time / theory time.

1. Theory for 10^4 modes x 100 values of P (power-law spectrum and target), ridge 0 and
   ridge 1e-3 (goal: < 50 ms each).
2. The same curve predicted and simulated (Gaussian features, exact errors) at a size the
   simulation can afford: 1000 modes, 20 values of P up to 500, 20 training sets per P.

Times are medians over interleaved repeats, as wall-clock and as CPU time of this process
(on a shared, loaded machine the CPU time is the reproducible figure).

    python bench/kernel_curves.py [--repeats 5] [--threads 1] [--json PATH]

``--json PATH`` also writes the ratios and times as data (bench/_results.py).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import Recorder, add_json_argument  # noqa: E402
from _timing import interleaved_clocks  # noqa: E402

from lmech.sim.kernel_regression import gaussian_feature_regression
from lmech.spectra import power_law
from lmech.theory.kernel_curves import learning_curve


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    add_json_argument(ap)
    args = ap.parse_args(argv)
    rec = Recorder()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    lam = power_law(10_000, 1.5, normalize=True)
    power = power_law(10_000, 2.0, normalize=True)
    P = np.geomspace(10, 1e5, 100)
    fns = [lambda r=r: learning_curve(lam, power, P, r, 0.01) for r in (0.0, 1e-3)]
    (w0, c0), (w1, c1) = interleaved_clocks(fns, repeats=args.repeats)
    print("theory, 10^4 modes x 100 P (goal < 50 ms):")
    print(f"  ridge 0     wall {1e3 * w0:8.1f} ms   cpu {1e3 * c0:8.1f} ms")
    print(f"  ridge 1e-3  wall {1e3 * w1:8.1f} ms   cpu {1e3 * c1:8.1f} ms")
    rec.detail("theory_1e4_modes_100_P", {"ridge0_wall_ms": 1e3 * w0, "ridge0_cpu_ms": 1e3 * c0,
                                          "ridge1e-3_wall_ms": 1e3 * w1, "ridge1e-3_cpu_ms": 1e3 * c1})

    lam_s = power_law(1000, 1.5, normalize=True)
    v = power_law(1000, 1.0)
    P_s = np.unique(np.geomspace(10, 500, 20).astype(int))

    def theory():
        return learning_curve(lam_s, v**2, P_s, 1e-3, 0.05)

    def sim():
        return gaussian_feature_regression(lam_s, v, P_s, 1e-3, 0.05, n_trials=20, seed=0)

    (w_th, c_th), (w_sim, c_sim) = interleaved_clocks([theory, sim], repeats=max(1, args.repeats // 2))
    rel = np.abs(sim().mean / theory().generalization_error - 1).mean()
    print(f"same curve, 1000 modes x {len(P_s)} P (P <= 500), 20 training sets per P "
          f"(mean relative gap {rel:.3f}):")
    print(f"  wall: theory {1e3 * w_th:8.2f} ms   simulation {w_sim:8.2f} s   sim/theory {w_sim / w_th:8.0f}x")
    print(f"  cpu:  theory {1e3 * c_th:8.2f} ms   simulation {c_sim:8.2f} s   sim/theory {c_sim / c_th:8.0f}x")
    rec.ratio("sim_over_theory/wall", w_sim / w_th)
    rec.ratio("sim_over_theory/cpu", c_sim / c_th)
    rec.measure("sim_vs_theory/mean_relative_gap", rel)
    rec.detail("sim_vs_theory", {"theory_wall_s": w_th, "sim_wall_s": w_sim, "theory_cpu_s": c_th, "sim_cpu_s": c_sim,
                                 "modes": 1000, "n_P": len(P_s), "trials": 20})
    rec.detail("repeats", args.repeats)
    rec.write(args.json)
    return rec.to_dict()


if __name__ == "__main__":
    main()
