"""Exceptions shared across lmech (base layer: imports nothing of lmech).

* :class:`UsageError` - bad command-line or API usage found after argument parsing; the
  command line reports it with the sub-command's usage and exit status 2.
* :class:`StoreError` - a results store that cannot be used (corrupt, truncated, written by
  something else, or locked by a running process); also exit status 2 on the command line.
"""
from __future__ import annotations

__all__ = ["LmechError", "UsageError", "StoreError"]


class LmechError(Exception):
    """Base class of lmech's own exceptions."""


class UsageError(LmechError, ValueError):
    """Bad usage detected after parsing (exit status 2 on the command line)."""


class StoreError(LmechError):
    """A results store that cannot be opened or written; the message says what to do."""
