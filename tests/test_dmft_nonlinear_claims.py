"""The nonlinear-DMFT claims pass in their quick setting (seed 0 by default; a second seed in
the slow suite so that passing is not luck)."""
import math

import numpy as np
import pytest

from lmech.claims.registry import get_claim

CLAIMS = ["dmft.two_layer.tanh", "dmft.deep.tanh_L2", "dmft.lazy_limit", "dmft.width_consistency"]


def _check(name, seed):
    result = get_claim(name).evaluate("quick", seed=seed)
    assert result.status == "passed", (result.value, result.checks, result.error)
    assert 0 <= result.value <= result.tolerance
    assert result.panels and all(result.checks.values())
    return result


@pytest.mark.parametrize("name", CLAIMS)
def test_claim_quick_passes(name):
    result = _check(name, 0)
    if "per_width" in result.details and "single_net_error_slope" in result.details:
        slope = result.details["single_net_error_slope"]
        assert math.isfinite(slope) and slope < 0


@pytest.mark.slow
@pytest.mark.parametrize("name", CLAIMS)
def test_claim_quick_passes_second_seed(name):
    _check(name, 1)


def test_claims_registered_with_paper_and_tolerance():
    for name in CLAIMS:
        c = get_claim(name)
        assert c.paper and c.statement and c.metric
        assert c.tolerance_for("full") in (0.02, 0.03, 0.05)
    assert get_claim("dmft.two_layer.tanh").tolerance_for("full") == 0.03
    assert get_claim("dmft.deep.tanh_L2").tolerance_for("full") == 0.05


def test_full_settings_reach_paper_scale():
    two = get_claim("dmft.two_layer.tanh").setting.full()
    deep = get_claim("dmft.deep.tanh_L2").setting.full()
    assert max(two.widths) == 4096 and max(deep.widths) == 4096
    assert len(two.widths) >= 4  # a slope fit over several widths
    wc = get_claim("dmft.width_consistency").setting.full()
    assert min(wc.widths) >= 512 and max(wc.widths) == 4096
    assert np.all(np.diff(two.widths) > 0)
