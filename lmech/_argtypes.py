"""argparse ``type=`` converters shared by the ``lmech`` sub-commands.

Each raises :class:`argparse.ArgumentTypeError` with the constraint and the offending text,
which argparse turns into a usage error (exit status 2).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

_N = TypeVar("_N", int, float)


def _number(text: str, kind: Callable[[str], _N], what: str, ok: Callable[[_N], bool]) -> _N:
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


def list_action(convert, *, min_len: int = 1) -> type[argparse.Action]:
    """An ``nargs="+"`` action taking values space- or comma-separated (``64 128`` or ``64,128``).

    Each item goes through ``convert`` (one of the converters above); fewer than ``min_len`` items
    is a usage error. Repeating the flag replaces the earlier list.
    """

    class _ListAction(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            items = []
            for token in values:
                for part in str(token).split(","):
                    if part.strip():
                        try:
                            items.append(convert(part.strip()))
                        except argparse.ArgumentTypeError as err:
                            parser.error(f"argument {option_string}: {err}")
            if len(items) < min_len:
                parser.error(f"argument {option_string}: needs at least {min_len} value(s); got {len(items)}")
            setattr(namespace, self.dest, items)

    return _ListAction
