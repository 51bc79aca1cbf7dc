"""The transfer.* claims: settings follow the protocol; the outcome is wired to the analysis.

Whether each quick setting passes is tested for every claim in tests/test_claims.py; here the
claims run on tiny settings (a few steps) to check what their outcome reports.
"""
import math
from dataclasses import replace

import pytest

from lmech.claims import get_claim
from lmech.claims.transfer import grid

CLAIMS = ["transfer.width.mlp", "transfer.width.gpt", "transfer.depth.resmlp", "transfer.depth.gpt",
          "transfer.width.monotone", "transfer.width.horizon"]


def _tiny(name, **kw):
    c = get_claim(name)
    result = c.evaluate("quick", seed=0, setting=replace(c.quick, steps=3, n_boot=50, **kw))
    assert result.status != "error", result.error
    return result


def test_transfer_outcome_reports_the_scheme_and_its_control():
    r = _tiny("transfer.depth.gpt", log2_lrs=grid(-9, -5, 1), control_log2_lrs=grid(-8, -6, 1))
    d = r.details
    assert math.isclose(r.value, d[d["scheme"]]["max_shift"])  # value = the tested scheme's shift
    assert d["control_max_shift"] == d[d["control"]]["max_shift"]
    assert len(d["completep"]["optima"]) == len(d["mup"]["optima"]) == 2
    assert len(d["completep"]["log2_hp"]) == 5 and len(d["mup"]["log2_hp"]) == 3  # each its own grid
    assert d["completep"]["seeds"] == d["mup"]["seeds"] == d["seeds"]  # same trial seeds for both
    assert len(r.checks) == 2 and r.panels


def test_monotone_counts_violations_of_the_mup_sweep():
    r = _tiny("transfer.width.monotone", sizes=(16, 32), n_seeds=1, fixed=(("depth", 3), ("base_width", 16)))
    d = r.details
    assert r.value == len(d["mup_violations"])
    assert r.checks["control SP: wider is not always better at fixed LR"] == bool(d["sp_violations"])
    for v in d["mup_violations"]:  # each listed pair really is a non-improvement
        i, h = d["widths"].index(v["width"]), d["log2_lr"].index(v["log2_lr"])
        nxt = d["mup_mean_loss"][i + 1][h]
        assert nxt is None or nxt >= d["mup_mean_loss"][i][h]
    assert len(r.panels) == 2


def test_seeds_change_the_trials():
    a = _tiny("transfer.depth.gpt", sizes=(2, 4), log2_lrs=(-8.0, -7.0, -6.0), control_log2_lrs=(-7.0,))
    c = get_claim("transfer.depth.gpt")
    b = c.evaluate("quick", 1, setting=replace(c.quick, sizes=(2, 4), log2_lrs=(-8.0, -7.0, -6.0),
                                                 control_log2_lrs=(-7.0,), steps=3, n_boot=50))
    assert a.details["seeds"] != b.details["seeds"]


def test_claims_registered_with_protocol_sizes():
    for name in CLAIMS:
        c = get_claim(name)
        assert c.paper and c.statement and c.metric
        assert c.quick != c.full
    for name in CLAIMS[:4]:
        c = get_claim(name)
        assert c.tolerance_for("quick") == c.tolerance_for("full") == 0.5
        full = c.full
        ratio = max(full.sizes) / min(full.sizes)
        # >= 4x; the full width runs train 800 steps (past the short-horizon drift of the optimum), where
        # 10 CPU minutes allow the MLP 8x from base 128 and the GPT 4x from base 32 (larger is a GPU job)
        assert ratio >= (8 if full.axis == "width" and full.model == "mlp" else 4)
        if full.axis == "width":
            assert dict(full.fixed)["base_width"] == min(full.sizes) >= (128 if full.model == "mlp" else 32)
            assert full.steps >= 800
        assert full.scheme != full.control
        steps = {round(b - a, 9) for a, b in zip(full.log2_lrs, full.log2_lrs[1:])}
        assert steps == {0.5}  # protocol grid spacing
        assert max(c.quick.sizes) / min(c.quick.sizes) >= 4
    assert get_claim("transfer.width.mlp").quick.sizes[-1] / 64 == 16
    mlp, gpt = get_claim("transfer.width.mlp"), get_claim("transfer.width.gpt")  # measured: see their reasons
    assert mlp.expectation_for("quick").kind == "known_failure" and mlp.expectation_for("full").kind == "pass"
    assert gpt.expectation_for("quick").kind == gpt.expectation_for("full").kind == "pass"
    mono = get_claim("transfer.width.monotone")
    assert mono.tolerance_for("full") == 0
    full, mlp_full = mono.full, get_claim("transfer.width.mlp").full
    assert dict(full.fixed)["base_width"] == min(full.sizes) == dict(mlp_full.fixed)["base_width"] == 128
    assert max(full.sizes) / min(full.sizes) >= 16
    assert max(full.log2_lrs) - min(full.log2_lrs) <= 2  # "around the base optimum": within one octave of it


def test_horizon_reads_each_horizon_off_one_sweep():
    c = get_claim("transfer.width.horizon")
    s = replace(c.quick, sizes=(16, 32), log2_lrs=grid(-8, -4, 1), horizons=(5, 10, 20),
                fixed=(("depth", 3), ("base_width", 16)))
    r = c.evaluate("quick", seed=0, setting=s)
    assert r.status != "error", r.error
    drift = r.details["drift"]
    assert list(drift) == ["5", "10", "20"] and all(abs(d) <= 4 for d in drift.values())  # inside the grid span
    assert math.isclose(r.value, abs(drift["20"]) / max(abs(drift["5"]), 1e-9))
    assert r.checks["a drift to shrink at the shortest horizon (>= 0.25)"] == (abs(drift["5"]) >= 0.25)


@pytest.mark.parametrize("start, stop, step, expected", [(-2, 0, 1, (-2, -1, 0)), (-1, 0, 0.5, (-1, -0.5, 0))])
def test_grid(start, stop, step, expected):
    assert grid(start, stop, step) == expected
