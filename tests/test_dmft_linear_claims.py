"""Registration and settings of the dmft.deep_linear.*, dmft.finite_width.* and
dmft.learning_rules.* claims (that each passes at quick is tested for every claim in
tests/test_claims.py)."""
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
        assert c.paper and c.statement and c.metric
        assert c.tolerance_for("full") <= c.tolerance_for("quick")
        assert c.quick != c.full


def test_hebb_keeps_its_seed_budget_and_step_cap():
    """Hebbian deep linear nets get 3x the seeds; the full setting's 50 steps are capped at 30 inside."""
    hebb, gd = get_claim("dmft.learning_rules.hebb"), get_claim("dmft.learning_rules.gd")
    assert hebb.quick.deep_seed_factor == hebb.full.deep_seed_factor == 3 and gd.quick.deep_seed_factor == 1
    assert (hebb.tolerance_for("quick"), hebb.tolerance_for("full")) == (0.08, 0.05)
    assert "30 GD steps" in " ".join(hebb.func.__doc__.split())
