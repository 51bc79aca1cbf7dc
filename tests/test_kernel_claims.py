"""Every kernel claim passes in its quick setting, for two seeds (so it is not luck)."""
import pytest
import torch

from lmech.claims.registry import get_claim, select_claims

NAMES = [
    "kernel.learning_curve.synthetic",
    "kernel.learning_curve.digits",
    "kernel.learning_curve.mnist1d",
    "kernel.double_descent.noise",
    "kernel.spectral_bias.mode_errors",
    "kernel.ood.shift",
    "kernel.wide_net",
]
HEAVY = {"kernel.learning_curve.digits", "kernel.learning_curve.mnist1d", "kernel.wide_net"}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_all_kernel_claims_are_registered():
    assert {c.name for c in select_claims(["kernel.*"])} == set(NAMES)
    for name in NAMES:
        c = get_claim(name)
        assert c.paper and c.statement and c.metric
        assert c.tolerance_for("full") <= c.tolerance_for("quick")


def _check(name, seed):
    r = get_claim(name).evaluate("quick", seed=seed)
    assert r.error is None, r.error
    assert r.passed, (r.value, r.tolerance, r.checks, r.details)
    assert r.panels and all(p["series"] for p in r.panels)


@pytest.mark.parametrize("name", NAMES)
def test_claim_passes_quick(name):
    _check(name, 0)


@pytest.mark.parametrize("name", [n if n not in HEAVY else pytest.param(n, marks=pytest.mark.slow) for n in NAMES])
def test_claim_passes_quick_second_seed(name):
    _check(name, 1)
