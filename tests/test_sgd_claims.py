"""Every sgd.* claim passes in its quick setting, for two seeds (so a pass is not luck)."""
import pytest

from lmech.claims import get_claim, select_claims

SGD_CLAIMS = [
    "sgd.learning_curve.gaussian",
    "sgd.learning_curve.batch_size",
    "sgd.learning_curve.divergence",
    "sgd.learning_curve.power_law",
    "sgd.learning_curve.digits",
    "sgd.two_point.resolvent",
    "sgd.two_point.linear",
    "sgd.two_point.random_features",
    "sgd.two_point.two_time",
]


def test_all_sgd_claims_are_registered():
    assert sorted(c.name for c in select_claims(["sgd.*"])) == sorted(SGD_CLAIMS)
    assert {c.name for c in select_claims(["schedules.optimal.*"])} == {
        "schedules.optimal.hard_phase", "schedules.optimal.easy_phase"}


@pytest.mark.parametrize("name", SGD_CLAIMS)
@pytest.mark.parametrize("seed", [0, 1])
def test_sgd_claim_passes_quick(name, seed):
    res = get_claim(name).evaluate("quick", seed=seed)
    assert res.status == "passed", (res.value, res.tolerance, res.checks, res.error)
    assert res.panels and res.value >= 0
