"""argparse ``type=`` converters shared by the ``lmech`` sub-commands.

Each raises :class:`argparse.ArgumentTypeError` with the constraint and the offending text,
which argparse turns into a usage error (exit status 2).
"""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind, what: str, ok) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def nonnegative_int(text: str) -> int:
    return _number(text, int, "a non-negative integer", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "a positive number", lambda v: v > 0 and math.isfinite(v))


def int_list(text: str, *, min_len: int = 2) -> list[int]:
    """Comma-separated positive integers, at least ``min_len`` of them (e.g. ``64,128,256``)."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, e.g. 64,128,256; got {text!r}") from None
    if len(values) < min_len or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"must list at least {min_len} positive integers; got {text!r}")
    return values
