"""The multi-head transformer of "Infinite Limits of Multi-head Transformer Dynamics" (lmech.sim.multihead)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmech.sim import multihead as mh


@pytest.mark.parametrize("alpha_A", [1.0, 0.5])
def test_initial_logit_variance_is_n_to_the_1_minus_2_alpha(alpha_A):
    # q and k have unit-variance entries given the normalised stream (||LN h||^2 = N H per token), and are
    # independent, so Var A = N^(-2 alpha_A) * N exactly in expectation
    X, _ = mh.teacher_task(64, S=4, seed=0)
    for N in (8, 32):
        vals = []
        for seed in range(6):
            net = mh.MultiHeadNet(mh.AttentionConfig(N=N, H=4, S=4, alpha_A=alpha_A), torch.Generator().manual_seed(seed))
            with torch.no_grad():
                net(X)
            vals.append(float(net.logits[0].var()))
        assert np.mean(vals) == pytest.approx(N ** (1 - 2 * alpha_A), rel=0.12)


def test_learning_rates_and_branch_scale():
    c = mh.AttentionConfig(N=8, H=4, L=4, alpha_L=1.0, gamma0=0.5)
    assert mh._lr(c, 0.1, True) == pytest.approx((0.1 * 0.25 * 32 * 4, 0.1 * 0.25 * 32))
    assert mh._lr(c, 0.1, False) == (0.1, 0.1)
    assert mh.MultiHeadNet(c).branch == pytest.approx(0.25)
    assert mh.MultiHeadNet(mh.AttentionConfig(L=4, alpha_L=0.5)).branch == pytest.approx(0.5)


def test_training_reduces_the_loss_and_is_reproducible():
    X, y = mh.teacher_task(32, S=4, seed=1)
    assert float(y.std()) == pytest.approx(1.0) and abs(float(y.mean())) < 1e-12
    c = mh.AttentionConfig(N=8, H=2, L=2, S=4)
    a = mh.train_multihead(c, X, y, eta0=0.2, steps=25, seed=3)
    b = mh.train_multihead(c, X, y, eta0=0.2, steps=25, seed=3)
    assert a.final_loss < 0.7 * a.loss[0] and not a.diverged
    assert np.array_equal(a.loss, b.loss) and a.kernel.shape == (32, 32)
    assert len(a.logits_final) == 2 and a.logits_final[0].shape == (32, 2, 4, 4) and np.all(a.qk_change > 0)
    huge = mh.train_multihead(c, X, y, eta0=1e4, steps=10, seed=3)
    assert huge.diverged and huge.final_loss == math.inf
    sweep = mh.lr_sweep(c, X, y, axis="H", sizes=(1, 2), log10_eta=(-1.0,), steps=3, seeds=(0,))
    assert sweep.shape == (2, 1, 1) and np.all(np.isfinite(sweep))


@pytest.mark.parametrize("call, err, match", [
    (lambda: mh.AttentionConfig(N=0), ValueError, "N"),
    (lambda: mh.AttentionConfig(alpha_A=-1.0), ValueError, "alpha_A"),
    (lambda: mh.AttentionConfig(N=512, H=64), ValueError, "N \\* H"),
    (lambda: mh.teacher_task(0), ValueError, "P"),
    (lambda: mh.train_multihead(mh.AttentionConfig(S=4), torch.zeros(3, 5, 16), torch.zeros(3), eta0=0.1, steps=1),
     ValueError, "X"),
    (lambda: mh.train_multihead("cfg", torch.zeros(3, 8, 16), torch.zeros(3), eta0=0.1, steps=1), TypeError, "cfg"),
    (lambda: mh.train_multihead(mh.AttentionConfig(), torch.zeros(3, 8, 16), torch.zeros(3), eta0=-1.0, steps=1),
     ValueError, "eta0"),
    (lambda: mh.lr_sweep(mh.AttentionConfig(), torch.zeros(3, 8, 16), torch.zeros(3), axis="D", sizes=(1,),
                         log10_eta=(0.0,), steps=1, seeds=(0,)), ValueError, "axis"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()
