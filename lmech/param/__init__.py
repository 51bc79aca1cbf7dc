"""Parameterizations for width/depth hyperparameter transfer on ordinary ``nn.Module`` s.

``Parameterization(scheme, base_width=..., base_depth=...)`` with schemes ``sp``, ``ntp``,
``mup``, ``depth_mup`` and ``completep``; ``p.apply(model)`` initialises in place and sets
forward multipliers, ``p.param_groups(model, lr=..., weight_decay=...)`` gives a stock
optimizer its groups; mixture-of-experts layers get the rules of :class:`MoERules`. The
coordinate check (activation and update sizes against width or depth) lives in :mod:`lmech.sim.coord_check`. Attributes are imported lazily (the CLI imports this package without torch).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Parameterization",
    "MoERules",
    "SCHEMES",
    "OPTIMIZERS",
    "ROLE_KINDS",
    "Role",
    "Layout",
    "classify",
    "ScaledLinear",
    "HeadDimWarning",
    "check_optimizer",
]

_LAZY = {
    "Parameterization": "lmech.param.parameterization",
    "MoERules": "lmech.param.parameterization",
    "SCHEMES": "lmech.param.rules",
    "OPTIMIZERS": "lmech.param.rules",
    "ROLE_KINDS": "lmech.param.rules",
    "Role": "lmech.param.roles",
    "Layout": "lmech.param.roles",
    "classify": "lmech.param.roles",
    "ScaledLinear": "lmech.param.layers",
    "HeadDimWarning": "lmech.param.roles",
    "check_optimizer": "lmech.param.parameterization",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lmech.param' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
