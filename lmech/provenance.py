"""Versions and machine facts recorded with every stored result."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

__all__ = ["environment"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[str | None, bool | None]:
    """(HEAD commit, whether tracked files under the package differ from it); Nones outside a checkout."""
    commit = _git("rev-parse", "HEAD") or None
    if commit is None:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit, (None if status is None else bool(status))


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """Package versions, Python, platform and git commit (cached per process)."""
    return {
        "lmech": _version("lmech"),
        "git_commit": _git_state()[0],
        "git_dirty": _git_state()[1],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "cpu_count": os.cpu_count(),
    }
