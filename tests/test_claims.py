"""Every registered claim, run at its quick setting (seed 0), meets its expectation.

One parametrized test replaces the per-family "the claim passes" tests: a claim expected to
pass must pass, a known failure must still fail (a known failure that starts passing must
have its expectation updated), and a fragile claim must pass at no fewer seeds than it
states. Claims whose quick setting is long are under the ``slow`` marker.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from lmech.claims import all_claims, get_claim
from lmech.claims.registry import MODES

CLAIMS = all_claims()


def _param(c):
    return pytest.param(c.name, id=c.name, marks=[pytest.mark.slow] if c.slow else [])


@pytest.mark.parametrize("name", [_param(c) for c in CLAIMS])
def test_claim_meets_expectation_quick(name):
    import torch

    torch.set_num_threads(1)
    r = get_claim(name).evaluate("quick", seed=0)
    assert r.status != "error", r.error
    assert r.met_expectation, (
        f"{name}: {r.category} (expected {r.expect}); value {r.value:.4g} vs tolerance {r.tolerance:g}; "
        f"checks {r.checks}; seeds {r.seed_results}")
    assert all(p["series"] for p in r.panels), "every panel draws something"
    json.dumps(r.to_dict(), allow_nan=False)  # the stored form is strict JSON


def test_registry_is_not_empty_and_names_are_unique():
    names = [c.name for c in CLAIMS]
    assert len(names) >= 68 and len(set(names)) == len(names)


@pytest.mark.parametrize("name", [c.name for c in CLAIMS])
def test_claim_metadata(name):
    c = get_claim(name)
    assert c.paper.strip() and c.metric.strip()
    assert c.statement.strip() and c.statement == " ".join(c.statement.split())
    for mode in MODES:
        s = c.setting_for(mode)
        assert dataclasses.is_dataclass(s) and not isinstance(s, type)
        json.dumps(dataclasses.asdict(s))  # settings are plain data
        exp = c.expectation_for(mode)
        assert exp.kind == "pass" or len(exp.reason) >= 20, "a known failure or fragile claim states its reason"
    assert c.tolerance_for("full") <= c.tolerance_for("quick")
    params = list(inspect.signature(c.func).parameters)
    assert len(params) == 2, "claim functions take (setting, seeds)"


def test_claim_modules_are_short():
    """Claim modules average at most 40 lines per claim (settings and docstrings included)."""
    import lmech.claims as pkg

    folder = Path(pkg.__file__).parent
    infrastructure = {"__init__.py", "registry.py", "runner.py", "toolkit.py"}
    lines = sum(len(p.read_text().splitlines()) for p in folder.glob("*.py") if p.name not in infrastructure)
    per_claim = lines / len([c for c in CLAIMS if c.module.startswith("lmech.claims.")])
    assert per_claim <= 40, f"{per_claim:.1f} lines per claim"
