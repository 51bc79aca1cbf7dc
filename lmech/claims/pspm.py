"""Claims: PSPM, a gradient-free supervised rule for recurrent spiking networks.

Simulation only (:mod:`lmech.sim.spiking`): a learner network is trained to reproduce a random
target network's spike trains on the same inputs and compared with a control that gets as many
weight changes of the same size at random synapses. Sizes in threshold units; ``eps`` and
``rescale`` are the authors' values times ``gain`` and ``400 / n`` (weights grow as ``400 / n``
to keep the recurrent input of the 400-neuron original), and the pairing window shrinks every
``sep_every`` epochs (15 in the authors' 150-epoch runs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmech.claims.toolkit import ClaimOutcome, Panel, SeedStream, Series, Setting, claim
from lmech.sim import spiking as sp

PAPER = "Pre-Synaptic Pool Modification (PSPM): A Supervised Learning Procedure for Spiking Neural Networks"

@dataclass(frozen=True)
class Run(Setting):
    n: int = 150
    steps: int = 2000
    epochs: int = 20
    gain: float = 3.0  # eps multiplier (rescale: 10x)
    sep_every: int = 2
    last: int = 3  # epochs averaged at the end

FULL = Run(n=400, steps=5000, epochs=40, gain=2.0, sep_every=3)

def _train(s: Run, seeds: SeedStream) -> tuple[sp.PSPMResult, Panel]:
    w = 0.05 * 400 / s.n
    target, inhib = sp.reference_weights(s.n, w, sparsity=0.4, seed=seeds.next())
    learner, _ = sp.reference_weights(s.n, 1.2 * w, seed=seeds.next(), inhibitory_idx=inhib)
    base = sp.PSPMRule()
    rule = sp.PSPMRule(eps=base.eps * s.gain * 400 / s.n, rescale=base.rescale * 10 * s.gain * 400 / s.n,
                       sep_every=s.sep_every)
    r = sp.train_pspm(target, learner, inhib, sp.lif_inputs(s.n, s.steps, seed=seeds.next()), epochs=s.epochs,
                      rule=rule, seed=seeds.next())
    ep = np.arange(s.epochs + 1)
    panel = Panel(f"PSPM, {s.n} LIF neurons, {s.steps} steps", "epoch", "van Rossum distance to target",
                  [Series("PSPM", ep, r.van_rossum, role="simulation"),
                   Series("random-update control", ep, r.van_rossum_control, role="simulation")])
    return r, panel

@claim("pspm.distance", paper=PAPER, tolerance=0.9, quick=Run(), full=FULL,
       metric="learner / control van Rossum distance to the target, mean of the last epochs")
def distance(s: Run, seeds: SeedStream):
    """Targeted PSPM updates bring the learner's spike trains closer to the target's than the same
    number of equally sized weight changes at random synapses: the final distance ratio stays below 0.9.

    Measured when set up: quick, seeds 0-2, ratios 0.80, 0.73, 0.76; the full setting (400 neurons,
    5000 steps, 40 epochs) 0.65 at two seeds, with the learner at 1.1 and the control at 1.8 from 6.9."""
    r, panel = _train(s, seeds)
    ratio = r.van_rossum[-s.last:].mean() / r.van_rossum_control[-s.last:].mean()
    return _outcome(ratio, panel, fell=r.van_rossum[-1] < 0.6 * r.van_rossum[0])

@claim("pspm.weights", paper=PAPER, tolerance=0.1, quick=Run(), full=FULL,
       metric="correlation of learned and ground-truth weight magnitudes at the end")
def weights(s: Run, seeds: SeedStream):
    """The learner reproduces the target's spikes without recovering its weights: the correlation of
    learned and ground-truth weight magnitudes stays below 0.1 while the spike distance halves."""
    r, panel = _train(s, seeds)
    return _outcome(abs(r.weight_corr[-1]), panel, fell=r.van_rossum[-1] < 0.5 * r.van_rossum[0],
                      corr_start=r.weight_corr[0])

@claim("pspm.avalanches", paper=PAPER, tolerance=0.08, quick=Run(), full=FULL,
       metric="Kolmogorov-Smirnov distance of avalanche-size distributions, learner vs target")
def avalanches(s: Run, seeds: SeedStream):
    """After training, the learner's avalanche sizes (runs of above-median population activity)
    follow the target's: the Kolmogorov-Smirnov distance falls below 0.08 from its initial value.

    Measured when set up: quick, seeds 0-2, 0.040, 0.014, 0.018 from 0.10-0.13; full 0.011 and 0.027
    (control 0.027 and 0.038). The homeostatic term matters little at these sizes: on a 100-neuron
    variant the distances without it were 0.037 and 0.054, with it 0.042 and 0.049."""
    r, panel = _train(s, seeds)
    thr = float(np.median(r.target_spikes.sum(axis=0)))
    ref = sp.avalanche_sizes(r.target_spikes, thr)
    ks = [sp.ks_distance(sp.avalanche_sizes(x, thr), ref) for x in (r.initial_spikes, r.final_spikes)]
    return _outcome(ks[1], panel, fell=ks[1] < ks[0], ks_initial=ks[0], avalanches=len(ref))

def _outcome(value: float, panel: Panel, fell: bool, **details) -> ClaimOutcome:
    return ClaimOutcome(float(value), [panel], checks={"learning happened": bool(fell)},
                        details={k: float(v) for k, v in details.items()})
