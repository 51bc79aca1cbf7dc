"""The dmft.deep_linear.*, dmft.finite_width.* and dmft.learning_rules.* claims pass in quick mode."""
import pytest
import torch

from lmech.claims import get_claim, select_claims

NAMES = [
    "dmft.deep_linear.loss_curves",
    "dmft.finite_width.variance",
    "dmft.finite_width.ensemble_tradeoff",
    "dmft.learning_rules.gd",
    "dmft.learning_rules.fa",
    "dmft.learning_rules.dfa",
    "dmft.learning_rules.hebb",
    "dmft.learning_rules.gln",
]


def test_claims_are_registered():
    names = {c.name for c in select_claims(["dmft.deep_linear.*", "dmft.finite_width.*", "dmft.learning_rules.*"])}
    assert set(NAMES) <= names
    for name in NAMES:
        c = get_claim(name)
        assert c.tolerance_for("full") <= c.tolerance_for("quick")
        assert c.setting.quick() != c.setting.full()


def _check(name, seed):
    torch.set_num_threads(1)
    result = get_claim(name).evaluate("quick", seed=seed)
    assert result.error is None, result.error
    assert result.passed, (result.value, result.tolerance, result.checks, result.details)
    assert result.panels and all(result.checks.values())


@pytest.mark.parametrize("name", NAMES)
def test_claim_quick_seed0(name):
    _check(name, 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_claim_quick_seed1(name):
    _check(name, 1)
