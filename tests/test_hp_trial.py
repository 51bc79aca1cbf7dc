"""Tests of lmech.sim.hp_trial: the unit of work of the HP-transfer sweeps."""
from __future__ import annotations

import json
import math
import pickle

import pytest
import torch

from lmech.sim.hp_trial import TrialConfig, TrialOutcome, run_trial


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: one intra-op thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

SMALL = dict(width=64, depth=3, steps=30, batch_size=32, base_width=32, base_depth=2)


def test_deterministic_and_dict_round_trip():
    cfg = TrialConfig("mlp", "mup", lr=3e-3, seed=3, **SMALL)
    a = run_trial(cfg)
    b = run_trial(cfg.to_dict())
    assert a.train_curve == b.train_curve and a.val_loss == b.val_loss
    assert TrialConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    c = run_trial(TrialConfig("mlp", "mup", lr=3e-3, seed=4, **SMALL))
    assert c.train_curve != a.train_curve
    d = TrialOutcome.from_dict(json.loads(json.dumps(a.to_dict())))
    assert d.train_curve == a.train_curve and d.final_train_loss == a.final_train_loss
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert not a.diverged and a.final_train_loss < a.train_curve[0]
    assert math.isfinite(a.val_loss) and a.n_params > 0 and len(a.train_curve) == 30


def test_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_trial(TrialConfig("mlp", "sp", lr=1e-3, **{**SMALL, "steps": 3}))
    assert torch.equal(torch.rand(3), expected)


def test_divergence_is_reported_not_raised():
    out = run_trial(TrialConfig("mlp", "sp", lr=30.0, **{**SMALL, "steps": 40}))
    assert out.diverged and out.final_train_loss == math.inf and out.val_loss == math.inf
    d = out.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["final_train_loss"] is None and d["val_loss"] is None
    back = TrialOutcome.from_dict(d)
    assert back.diverged and back.final_train_loss == math.inf


def test_divergence_reference_is_the_initial_held_out_loss():
    """A slowly learning 30-step run whose first minibatch happened to be easy (loss 2.12,
    ~3 batch-std below the initial model's mean loss 2.45) must not be flagged as diverged:
    the reference is the initial model's held-out loss, not the first batch's loss."""
    cfg = dict(model="mlp", scheme="mup", width=16, depth=2, base_width=16, batch_size=32)
    out = run_trial(TrialConfig(lr=2.0**-7, steps=30, **cfg))
    assert not out.diverged
    assert out.train_curve[0] < out.final_train_loss < out.initial_loss
    # independent path: a run that cannot move evaluates the same model at its end
    frozen = run_trial(TrialConfig(lr=1e-12, steps=1, **cfg))
    assert frozen.initial_loss == pytest.approx(out.initial_loss, rel=1e-12)
    assert frozen.val_loss == pytest.approx(frozen.initial_loss, abs=1e-6)
    assert TrialOutcome.from_dict(out.to_dict()).initial_loss == out.initial_loss


@pytest.mark.parametrize("model,scheme,optimizer", [("resmlp", "completep", "adamw"), ("resmlp", "depth_mup", "sgd"),
                                                     ("mlp", "ntp", "sgd"), ("gpt", "mup", "adamw")])
def test_models_schemes_optimizers_train(model, scheme, optimizer):
    kw = dict(SMALL)
    if model == "gpt":
        kw.update(width=32, base_width=16, depth=2, batch_size=4, seq_len=16, head_dim=8, steps=20)
    lr = 3e-3 if optimizer == "adamw" else 0.1
    out = run_trial(TrialConfig(model, scheme, lr=lr, optimizer=optimizer, weight_decay=0.01, momentum=0.9, **kw))
    assert not out.diverged
    assert out.final_train_loss < out.train_curve[0]


def test_eval_every_and_schedule():
    cfg = TrialConfig("mlp", "mup", lr=3e-3, eval_every=10, warmup_steps=5, schedule="cosine",
                      task="digits", **SMALL)
    out = run_trial(cfg)
    assert out.val_steps == [10, 20, 30] and len(out.val_curve) == 3
    assert out.val_curve[-1] == out.val_loss


def test_bad_configs():
    with pytest.raises(ValueError, match="`model`"):
        TrialConfig("cnn", "mup", 64, 2, 1e-3)
    with pytest.raises(ValueError, match="`scheme`"):
        TrialConfig("mlp", "mu", 64, 2, 1e-3)
    with pytest.raises(ValueError, match="`base_width`"):
        TrialConfig("mlp", "mup", 32, 2, 1e-3, base_width=64)
    with pytest.raises(ValueError, match="`width`"):
        TrialConfig("mlp", "mup", 0, 2, 1e-3)
    with pytest.raises(ValueError, match="`lr`"):
        TrialConfig("mlp", "mup", 64, 2, -1.0)
    with pytest.raises(ValueError, match="`task`"):
        TrialConfig("mlp", "mup", 64, 2, 1e-3, task="text")
    with pytest.raises(ValueError, match="`optimizer`"):
        TrialConfig("mlp", "mup", 64, 2, 1e-3, optimizer="adam8bit")
    with pytest.raises(ValueError, match="head_dim"):
        TrialConfig("gpt", "mup", 72, 2, 1e-3, head_dim=16)
    with pytest.raises(ValueError, match="unknown"):
        TrialConfig.from_dict({"model": "mlp", "scheme": "mup", "width": 64, "depth": 2, "lr": 1e-3, "foo": 1})
