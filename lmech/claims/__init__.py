"""Registered claims: each paper's central quantitative statement as a runnable check.

Claim modules in this package (one per paper family) register claims with
:func:`lmech.claims.claim`; they are imported on first use of :func:`all_claims`.
"""
from lmech.claims.registry import (
    Claim,
    ClaimOutcome,
    ClaimResult,
    Expectation,
    Panel,
    Series,
    Setting,
    Tolerance,
    all_claims,
    claim,
    fragile,
    get_claim,
    known_failure,
    select_claims,
)
from lmech.claims.runner import load_results, run_claims

__all__ = [
    "Claim",
    "ClaimOutcome",
    "ClaimResult",
    "Expectation",
    "Panel",
    "Series",
    "Setting",
    "Tolerance",
    "all_claims",
    "claim",
    "fragile",
    "known_failure",
    "get_claim",
    "select_claims",
    "run_claims",
    "load_results",
]
