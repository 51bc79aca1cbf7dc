import json
import math
from dataclasses import dataclass

import pytest

import lmech.claims.registry as registry
from lmech._errors import UsageError
from lmech.claims import ClaimOutcome, Panel, Series, Setting, Tolerance, claim, run_claims, select_claims
from lmech.report import write_report
from lmech.store import ResultStore


@pytest.fixture
def toy(isolated_registry):
    import _toy_claims

    _toy_claims.register()
    return [registry.get_claim("toy.ok"), registry.get_claim("toy.crash")]


@dataclass(frozen=True)
class S(Setting):
    a: int = 0


def test_evaluate_pass_fail_and_error(toy):
    ok, crash = toy
    r = ok.evaluate("quick", seed=1)
    assert r.status == "passed" and r.passed and r.value < 0.01
    assert r.setting == {"n": 10, "bias": 0.0, "sleep": 0.0}
    assert r.environment["torch"] and r.seconds >= 0
    r_full = ok.evaluate("full", seed=1)
    assert r_full.status == "failed" and not r_full.passed and abs(r_full.value - 0.3) < 0.01
    r_err = crash.evaluate("quick")
    assert r_err.status == "error" and "deliberate failure" in r_err.error and math.isnan(r_err.value)


def test_same_seed_same_numbers(toy):
    a = toy[0].evaluate("quick", seed=3)
    b = toy[0].evaluate("quick", seed=3)
    c = toy[0].evaluate("quick", seed=4)
    assert a.value == b.value and a.value != c.value


def test_checks_must_all_hold(isolated_registry):
    @claim("toy.checks", paper="p", metric="m", tolerance=1.0, quick=S())
    def f(setting, seeds):
        """A statement."""
        return ClaimOutcome(value=0.0, checks={"control separates": False})

    r = registry.get_claim("toy.checks").evaluate()
    assert r.status == "failed" and r.checks == {"control separates": False}


def test_registration_validation(isolated_registry):
    with pytest.raises(ValueError, match="dotted"):
        claim("bad name", paper="p", metric="m", tolerance=1, quick=S())
    with pytest.raises(TypeError, match="dataclass instance"):
        claim("a.b", paper="p", metric="m", tolerance=1, quick=dict)
    with pytest.raises(ValueError, match="docstring"):
        claim("a.b", paper="p", metric="m", tolerance=1, quick=S())(lambda s, seeds: ClaimOutcome(0.0))


def test_tolerance_per_mode(isolated_registry):
    @claim("toy.tol", paper="p", metric="m", tolerance=Tolerance(quick=0.1, full=0.05), quick=S())
    def f(setting, seeds):
        """A statement."""
        return ClaimOutcome(value=0.07)

    c = registry.get_claim("toy.tol")
    assert c.evaluate("quick").passed and not c.evaluate("full").passed


def test_series_validation():
    with pytest.raises(ValueError, match="points"):
        Series("a", [1, 2], [1])
    with pytest.raises(ValueError, match="role"):
        Series("a", [1], [1], role="guess")


@pytest.mark.parametrize("backend, jobs", [("inprocess", None), ("local", 1), ("local", 2)])
def test_runner_stores_skips_and_forces(toy, tmp_path, backend, jobs):
    out = tmp_path / "run"
    seen = []
    results = run_claims(toy, mode="quick", seed=0, out=out, jobs=jobs, backend=backend, progress=False,
                         on_result=seen.append)
    assert {r.name: r.status for r in results} == {"toy.ok": "passed", "toy.crash": "error"}
    assert len(seen) == 2
    store = ResultStore(out / "results.sqlite")
    assert store.count("claim") == 2
    # rerun: the finished claim is skipped, the errored one retried
    seen.clear()
    run_claims(toy, mode="quick", seed=0, out=out, jobs=jobs, backend=backend, progress=False, on_result=seen.append)
    assert [r.name for r in seen] == ["toy.crash"]
    seen.clear()
    run_claims(toy, mode="quick", seed=0, out=out, jobs=jobs, backend=backend, force=True, progress=False,
               on_result=seen.append)
    assert sorted(r.name for r in seen) == ["toy.crash", "toy.ok"]
    assert store.count("claim") == 2  # no duplicates


def test_report_and_results_json(toy, tmp_path):
    results = run_claims(toy, mode="quick", out=tmp_path, backend="inprocess", progress=False)
    page = write_report(results, tmp_path).read_text()
    assert "<svg" in page and "toy.ok" in page and "deliberate failure" in page
    data = json.loads((tmp_path / "results.json").read_text())
    for row in data:
        assert {"name", "paper", "passed", "metric", "value", "tolerance", "seconds", "setting"} <= set(row)
    crash = next(r for r in data if r["name"] == "toy.crash")
    assert crash["value"] is None and crash["passed"] is False


def test_select_claims_glob(toy):
    names = [c.name for c in select_claims(["toy.*"])]
    assert names == ["toy.crash", "toy.fragile", "toy.known", "toy.known_fixed", "toy.ok", "toy.sigkill", "toy.slow"]
    assert [c.name for c in select_claims(["toy.ok,toy.c*"])] == ["toy.crash", "toy.ok"]
    with pytest.raises(UsageError, match="nothing"):
        select_claims(["nothing.*"])
