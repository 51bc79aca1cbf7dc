"""The sgd.* claims are registered with the new toolkit's metadata (passing at quick is checked
for every claim by tests/test_claims.py)."""
from lmech.claims import get_claim, select_claims
from lmech.seeds import SeedStream

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
    for name in SGD_CLAIMS:
        c = get_claim(name)
        assert c.paper and c.statement and c.metric and c.quick != c.full


def test_claim_function_is_deterministic_in_its_seed_stream():
    c = get_claim("sgd.two_point.two_time")
    a, b = (c.func(c.quick, SeedStream(3, c.name)) for _ in range(2))
    assert a.value == b.value
    assert c.func(c.quick, SeedStream(4, c.name)).value != a.value
