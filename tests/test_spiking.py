"""LIF simulator, spike pairing, distances and the PSPM rule (lmech.sim.spiking)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lmech.sim import spiking as sp


def _edit_cost(t: list[int], s: list[int], max_sep: int) -> int:
    """Plain O(n m) alignment cost: pairs at most max_sep apart cost |t - s|, unpaired spikes a = max_sep + 1."""
    a = max_sep + 1
    D = [[0] * (len(s) + 1) for _ in range(len(t) + 1)]
    for i in range(len(t) + 1):
        for j in range(len(s) + 1):
            if i == 0 or j == 0:
                D[i][j] = a * (i + j)
                continue
            best = min(D[i - 1][j] + a, D[i][j - 1] + a)
            d = abs(t[i - 1] - s[j - 1])
            if d <= max_sep:
                best = min(best, D[i - 1][j - 1] + d)
            D[i][j] = best
    return D[-1][-1]


def test_pairing_is_optimal_and_consistent():
    rng = np.random.default_rng(0)
    learner = rng.random((30, 120)) < 0.08
    target = rng.random((30, 120)) < 0.06
    learner[3] = False  # a silent neuron
    for max_sep in (0, 3, 8):
        un_l, un_t, cost = sp.pair_spikes(learner, target, max_sep)
        for k in range(30):
            t, s = list(np.flatnonzero(learner[k])), list(np.flatnonzero(target[k]))
            assert cost[k] == _edit_cost(t, s, max_sep)
            # the unmatched spikes reported realise that cost: the rest pair up in order, within max_sep
            tl, tt = np.flatnonzero(learner[k] & ~un_l[k]), np.flatnonzero(target[k] & ~un_t[k])
            assert len(tl) == len(tt) and np.all(np.abs(tl - tt) <= max_sep)
            assert cost[k] == np.abs(tl - tt).sum() + (max_sep + 1) * (un_l[k].sum() + un_t[k].sum())
    # the greedy fallback (huge tables) pairs validly and costs at least the optimum
    un_l, un_t, greedy = sp.pair_spikes(learner, target, 8, max_cells=1)
    assert np.all(greedy >= sp.pair_spikes(learner, target, 8)[2])


def test_van_rossum_closed_forms():
    x = np.zeros((2, 400), dtype=bool)
    assert sp.van_rossum(x, x).tolist() == [0.0, 0.0]
    y = x.copy()
    y[0, 10] = True
    tau = 10.0
    d = sp.van_rossum(y, x, tau)
    assert d[0] == pytest.approx(math.sqrt(1 / (tau * (1 - math.exp(-2 / tau)))), rel=1e-6) and d[1] == 0.0
    with pytest.raises(ValueError, match="tau"):
        sp.van_rossum(x, x, 0.0)


def test_lif_fires_with_the_closed_form_period():
    # one uncoupled neuron with constant drive u > 1: after a reset v_m = u (1 - (1 - a)^m), a spike
    # follows at the first m with v_m > 1 (the first spike too, starting from v = 0)
    lif = sp.LIF()
    u = 1.3
    m = next(k for k in range(1, 1000) if u * (1 - (1 - lif.a) ** k) > 1)
    s = sp.simulate_lif(np.zeros((1, 1)), np.full((1, 200), u), lif)
    assert np.array_equal(np.flatnonzero(s[0]), np.arange(m, 200, m))
    assert not sp.simulate_lif(np.zeros((1, 1)), np.full((1, 200), 0.99), lif).any()


def test_recurrent_excitation_and_batching():
    n = 60
    u = sp.lif_inputs(n, 800, seed=1)
    W, inhib = sp.reference_weights(n, 0.2, seed=2)
    both = sp.simulate_lif(np.stack([W, np.zeros_like(W)]), u)
    assert np.array_equal(both[0], sp.simulate_lif(W, u))
    assert both[0].sum() != both[1].sum()  # the coupling matters
    assert np.all(W[:, inhib] <= 0) and np.all(W[:, ~inhib] >= 0) and inhib.sum() == 12


def test_avalanches_and_ks():
    spikes = np.zeros((3, 10), dtype=bool)
    spikes[:, 2:4] = True
    spikes[0, 7] = True
    assert sp.avalanche_sizes(spikes, 0.5).tolist() == [6.0, 1.0]
    assert sp.avalanche_sizes(spikes, 5).size == 0
    assert sp.ks_distance([1, 2, 3], [1, 2, 3]) == 0.0 and sp.ks_distance([1, 2], [5, 6]) == 1.0
    assert sp.ks_distance([], [1]) == 1.0


def test_pspm_learns_keeps_dale_and_clip_modes():
    n = 80
    w = 0.05 * 400 / n
    target, inhib = sp.reference_weights(n, w, sparsity=0.4, seed=3)
    learner, _ = sp.reference_weights(n, 1.2 * w, seed=4, inhibitory_idx=inhib)
    u = sp.lif_inputs(n, 1000, seed=5)
    rule = sp.PSPMRule(eps=sp.PSPMRule().eps * 15, sep_every=2)
    r = sp.train_pspm(target, learner, inhib, u, epochs=8, rule=rule, seed=0)
    assert r.unmatched[-1] < 0.5 * r.unmatched[0] and r.van_rossum[-1] < r.van_rossum[0]
    for W in (r.W, r.W_control):
        assert np.all(W[:, inhib] <= 0) and np.all(W[:, ~inhib] >= 0)
    assert r.zeroed_fraction == 0.0  # nothing starts at zero; rejected updates never create zeros
    z = sp.train_pspm(target, learner, inhib, u, epochs=8, rule=sp.PSPMRule(eps=rule.eps * 5, clip="zero"), seed=0)
    assert z.zeroed_fraction > 0.0
    again = sp.train_pspm(target, learner, inhib, u, epochs=8, rule=rule, seed=0)
    assert np.array_equal(again.W, r.W)  # same seed, same numbers


@pytest.mark.parametrize("call, match", [
    (lambda: sp.LIF(a=1.5), "a"),
    (lambda: sp.PSPMRule(clip="prune"), "clip"),
    (lambda: sp.PSPMRule(z=0), "z"),
    (lambda: sp.lif_inputs(0, 10), "n"),
    (lambda: sp.simulate_lif(np.zeros((3, 3)), np.zeros((4, 10))), "W"),
    (lambda: sp.simulate_lif(np.full((2, 2), np.nan), np.zeros((2, 10))), "W"),
    (lambda: sp.pair_spikes(np.zeros((2, 5)), np.zeros((3, 5)), 2), "learner"),
    (lambda: sp.pair_spikes(np.zeros((2, 5)), np.zeros((2, 5)), -1), "max_sep"),
    (lambda: sp.reference_weights(10, -1.0), "w_max"),
    (lambda: sp.train_pspm(np.zeros((3, 3)), np.zeros((4, 4)), np.zeros(3, bool), np.zeros((3, 5)), epochs=1),
     "learner_W"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
