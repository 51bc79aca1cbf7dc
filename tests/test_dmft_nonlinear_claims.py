"""Registration and settings of the nonlinear-DMFT claims (that each passes at quick is tested
for every claim in tests/test_claims.py)."""
import numpy as np

from lmech.claims.registry import get_claim

CLAIMS = ["dmft.two_layer.tanh", "dmft.deep.tanh_L2", "dmft.lazy_limit", "dmft.width_consistency"]


def test_claims_registered_with_paper_and_tolerance():
    for name in CLAIMS:
        c = get_claim(name)
        assert c.paper and c.statement and c.metric
        assert c.tolerance_for("full") in (0.02, 0.03, 0.05)
    assert get_claim("dmft.two_layer.tanh").tolerance_for("full") == 0.03
    assert get_claim("dmft.deep.tanh_L2").tolerance_for("full") == 0.05


def test_full_settings_reach_paper_scale():
    two, deep = get_claim("dmft.two_layer.tanh").full, get_claim("dmft.deep.tanh_L2").full
    assert max(two.widths) == 4096 and max(deep.widths) == 4096
    assert two.depth == 1 and deep.depth == 2
    assert len(two.widths) >= 4  # a slope fit over several widths
    wc = get_claim("dmft.width_consistency").full
    assert min(wc.widths) >= 512 and max(wc.widths) == 4096
    assert np.all(np.diff(two.widths) > 0)
