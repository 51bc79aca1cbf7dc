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


# Optimizer names shared by every sub-command that trains (one vocabulary). ``adamw`` is
# torch.optim.AdamW (decoupled weight decay; with a weight decay of 0 the same update as Adam).
OPTIMIZERS = ("adamw", "sgd")
_OPTIMIZER_ALIASES = {"adam": "adamw"}


def optimizer(text: str) -> str:
    """An optimizer name of :data:`OPTIMIZERS`; the old spelling ``adam`` is accepted with a
    deprecation note on stderr and means ``adamw``."""
    import sys

    name = text.strip().lower()
    if name in _OPTIMIZER_ALIASES:
        new = _OPTIMIZER_ALIASES[name]
        print(f"lmech: note: --optimizer {name} is deprecated; use --optimizer {new} (the same update)",
              file=sys.stderr)
        return new
    if name not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(OPTIMIZERS)}; got {text!r}")
    return name


def output_dir(path: str, flag: str = "--out"):
    """Create the output folder ``path`` (and parents) and check it can be written to.

    Raises :class:`lmech._errors.UsageError` naming ``flag`` and the path when it is a file,
    lies under a file, or cannot be created or written.
    """
    import os
    from pathlib import Path

    from lmech._errors import UsageError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {path}: must be a folder; it is an existing file")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{flag} {path}: must be a folder; a part of the path is an existing file") from None
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: the folder is not writable")
    return p


def load_callable(spec: str, flag: str = "--model"):
    """Import ``MODULE:NAME`` (the current folder is importable) and return the callable.

    Raises ValueError naming ``flag`` when the spec is malformed, the module cannot be
    imported or has no callable of that name.
    """
    import importlib
    import sys

    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"{flag} must be MODULE:NAME, got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ValueError(f"{flag} {spec!r}: cannot import module {module!r} ({exc})") from None
    obj = getattr(mod, name, None)
    if not callable(obj):
        raise ValueError(f"{flag} {spec!r}: module {module!r} has no callable {name!r}")
    return obj
