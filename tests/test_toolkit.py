"""The claims toolkit and the base modules it re-exports: seeds, metrics, fits, expectations."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from lmech.claims import toolkit as tk
from lmech.claims.registry import Claim, ClaimOutcome, Expectation, fragile, known_failure
from lmech.fits import fit_power_law
from lmech.records import ClaimResult, summary_counts, summary_line
from lmech.seeds import SeedStream


# --------------------------------------------------------------------------- seeds
def test_seed_stream_is_reproducible_and_independent():
    a, b = SeedStream(3, "x"), SeedStream(3, "x")
    assert a.take(5) == b.take(5)
    draws = SeedStream(3, "x").take(200)
    assert len(set(draws)) == 200 and all(0 <= d < 2**31 for d in draws)
    assert SeedStream(3, "x").take(3) != SeedStream(3, "y").take(3)  # the key matters
    assert SeedStream(3, "x").take(3) != SeedStream(4, "x").take(3)  # the seed matters
    g1, g2 = SeedStream(0).rng(), SeedStream(0).rng()
    assert g1.standard_normal() == g2.standard_normal()


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("0", TypeError)])
def test_seed_stream_rejects_bad_seeds(bad, exc):
    with pytest.raises(exc, match="seed"):
        SeedStream(bad)


# --------------------------------------------------------------------------- metrics
def test_relative_errors_name_their_denominator():
    assert tk.rel_err_theory(2.0, 3.0) == pytest.approx(0.5)
    assert tk.rel_err_sim(2.0, 3.0) == pytest.approx(1 / 3)
    assert tk.norm_rel_err_theory([3.0, 4.0], [3.0, 5.0]) == pytest.approx(1 / 5)
    assert tk.log_ratio(1.0, np.e) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sim"):
        tk.rel_err_theory([1.0, 2.0], [1.0, 2.0, 3.0])


def test_power_law_fit_recovers_exponent_and_slope():
    x = np.geomspace(1, 100, 9)
    fit = fit_power_law(x, 2.0 * x**-0.7)
    assert fit.exponent == pytest.approx(0.7) and fit.slope == pytest.approx(-0.7)
    assert fit(10.0) == pytest.approx(2.0 * 10**-0.7)
    assert tk.width_slope([64, 128, 256], [1.0, 2**-0.5, 0.5]) == pytest.approx(-0.5)


def test_power_law_problem():
    lam, p = tk.power_law_problem(50, 1.5, 2.0, normalize=True)
    assert lam.sum() == pytest.approx(1) and p.sum() == pytest.approx(1)
    k = np.arange(1, 51)
    assert np.allclose(lam / lam[0], k**-1.5) and np.allclose(p / p[0], k**-2.0)


# --------------------------------------------------------------------------- comparison
def test_comparison_scores_pairs_and_builds_the_panel():
    cmp = tk.Comparison("t", "x", "y")
    e1 = cmp.add("a", [1, 2], [1.0, 2.0], [1.1, 2.0], [0.1, 0.1])
    cmp.add("b", [1, 2], [1.0, 4.0], [1.0, 5.0])
    cmp.draw("context", [1, 2], [3.0, 3.0])
    cmp.show("shown", [1, 2], [1.0, 1.0], [9.0, 9.0])  # drawn like a pair, not scored
    cmp.reference("slope -1", [1, 2], [1.0, 0.5])
    assert np.allclose(e1, [0.1, 0.0])
    out = cmp.outcome("max", checks={"ok": True})
    assert isinstance(out, ClaimOutcome) and out.value == pytest.approx(0.25)
    assert cmp.outcome().value == pytest.approx((0.1 + 0 + 0 + 0.25) / 4)
    roles = [s.role for s in out.panels[0].series]
    assert roles == ["theory", "simulation", "theory", "simulation", "simulation", "theory", "simulation", "reference"]
    assert [s.label for s in out.panels[0].series][5:7] == ["shown theory", "shown sim"]
    assert set(out.details["errors"]) == {"a", "b"}
    with pytest.raises(ValueError, match="denominator"):
        tk.Comparison("t", "x", "y", denominator="median")
    assert np.isclose(tk.compare("", [1], [2.0], [3.0], title="t", xlabel="x", ylabel="y",
                                 denominator="sim").errors[0], 1 / 3)


def test_outcome_over_several_comparisons():
    a, b = tk.Comparison("A", "x", "y"), tk.Comparison("B", "x", "y", denominator="absolute")
    a.add("a", [1, 2], [1.0, 2.0], [1.5, 2.0])  # errors 0.5, 0
    b.add("b", [1], [1.0], [3.0])  # absolute error 2
    extra = tk.Panel("C", "x", "y", ())
    out = tk.outcome(a, b, reduce="max", checks={"ok": True}, details={"n": 3}, panels=[extra])
    assert out.value == pytest.approx(2.0) and tk.outcome(a, b).value == pytest.approx(2.5 / 3)
    assert [p.title for p in out.panels] == ["A", "B", "C"]
    assert out.details == {"errors": {"a": [0.5, 0.0], "b": [2.0]}, "n": 3} and out.checks == {"ok": True}
    assert a.outcome("max").value == tk.outcome(a, reduce="max").value == pytest.approx(0.5)
    with pytest.raises(ValueError, match="reduce"):
        tk.outcome(a, reduce="median")
    with pytest.raises(ValueError, match="comparisons"):
        tk.outcome()


def test_sem():
    assert np.allclose(tk.sem(np.array([[1.0, 2.0], [3.0, 2.0]])), [1.0, 0.0])
    assert np.allclose(tk.sem(np.ones((1, 3))), 0.0)


# --------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class _S:
    value: float = 0.0


def _make(values, expect=()):
    def func(s, seeds):
        """A toy claim."""
        return ClaimOutcome(values[seeds.seed])

    return Claim("toy.claim", "paper", "statement", "metric", 0.5, _S(), _S(), func, __name__,
                 (expect,) if isinstance(expect, Expectation) else tuple(expect))


@pytest.mark.parametrize("values, expect, category, met", [
    ([0.1], (), "passed", True),
    ([0.9], (), "failed", False),
    ([0.9], known_failure("measured 0.9 against 0.5 at this size"), "known_failure", True),
    ([0.1], known_failure("measured 0.9 against 0.5 at this size"), "unexpected_pass", False),
    ([0.1, 0.9, 0.9], fragile("passes at seed 0 only (0.1, 0.9, 0.9)", n_seeds=3), "fragile", True),
    ([0.1, 0.1, 0.1], fragile("passes at seed 0 only (0.1, 0.9, 0.9)", n_seeds=3), "passed", True),
    ([0.9, 0.9, 0.9], fragile("passes at seed 0 only (0.1, 0.9, 0.9)", n_seeds=3), "failed", False),
    ([0.1, 0.9, 0.9], fragile("passes at two of three seeds at best", n_seeds=3, min_passing=2), "failed", False),
])
def test_expectation_categories(values, expect, category, met):
    r = _make(values, expect).evaluate("quick", 0)
    assert (r.category, r.met_expectation) == (category, met)
    back = ClaimResult.from_dict(r.to_dict())
    assert back.category == category and back.seed_results == r.seed_results
    if isinstance(expect, Expectation) and expect.kind == "fragile":
        assert r.seeds_run == 3 and r.seeds_passed == sum(v <= 0.5 for v in values)


def test_expectation_applies_to_its_modes_only():
    c = _make([0.9], known_failure("fails at full size only: 0.9 vs 0.5", modes=("full",)))
    assert c.evaluate("quick", 0).category == "failed"
    assert c.evaluate("full", 0).category == "known_failure"


def test_error_is_never_met():
    def boom(s, seeds):
        """Raises."""
        raise RuntimeError("boom")

    c = Claim("toy.err", "p", "s", "m", 0.5, _S(), _S(), boom, __name__, (known_failure("always fails: boom"),))
    r = c.evaluate("quick", 0)
    assert r.category == "error" and not r.met_expectation and "boom" in r.error


@pytest.mark.parametrize("kwargs", [dict(kind="nope"), dict(kind="known_failure", reason=""),
                                    dict(kind="pass", modes=("medium",)),
                                    dict(kind="fragile", reason="r", n_seeds=1)])
def test_bad_expectations(kwargs):
    with pytest.raises(ValueError):
        Expectation(**kwargs)


def test_summary_line():
    base = dict(paper="p", statement="s", metric="m", mode="quick", seed=0, value=0.1, tolerance=0.5, seconds=1.0,
                setting={})
    rs = [ClaimResult(name="a", status="passed", passed=True, **base),
          ClaimResult(name="b", status="failed", passed=False, expect="known_failure", reason="r", **base),
          ClaimResult(name="c", status="passed", passed=True, **base)]
    assert summary_counts(rs)["passed"] == 2
    assert summary_line(rs) == "2 passed, 1 known failure"


def test_select_claims_refuses_a_glob_that_matches_nothing():
    from lmech._errors import UsageError
    from lmech.claims import select_claims

    assert select_claims(["kernel.*"])
    with pytest.raises(UsageError, match="typo"):
        select_claims(["kernel.*", "typo*"])
