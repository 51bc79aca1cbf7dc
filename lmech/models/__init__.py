"""Models whose forward multipliers come from a :class:`lmech.param.Parameterization`.

* :class:`MLP`: fully connected, ``depth`` linear layers;
* :class:`ResMLP`: pre-LN residual MLP with ``depth`` blocks;
* :class:`GPT`: small pre-LN character-level transformer.

``build(name, **kw)`` constructs one by name ("mlp", "resmlp", "gpt").
"""
from __future__ import annotations

from typing import Any

from lmech._validation import check_choice
from lmech.models.base import LmechModel
from lmech.models.gpt import GPT
from lmech.models.mlp import MLP
from lmech.models.resmlp import ResMLP

__all__ = ["MLP", "ResMLP", "GPT", "LmechModel", "build", "MODELS"]

MODELS = {"mlp": MLP, "resmlp": ResMLP, "gpt": GPT}


def build(name: str, **kw: Any) -> LmechModel:
    """Construct the model ``name`` ("mlp", "resmlp" or "gpt") with keywords ``kw``.

    Example: ``build("resmlp", d_in=40, d_out=10, width=256, depth=4)``.
    """
    check_choice(name, "name", tuple(MODELS))
    return MODELS[name](**kw)
