"""Layers with forward-multiplier *sites* that a :class:`~lmech.param.Parameterization` fills in.

A site is a plain Python float stored on a module, so it survives ``copy.deepcopy``,
pickling and ``torch.compile`` (a constant to the compiler), and is written to the module's
``state_dict`` as extra state. The library recognises three attributes:

* ``input_multiplier`` on a Linear-like module: ``y = W (input_multiplier * x) + b``
  (the muP readout's ``1/m`` and NTP's ``m^-1/2``; the bias is not multiplied);
* ``branch_multiplier`` on a residual block: ``x + branch_multiplier * F(x)``;
* ``attn_scale`` (with ``head_dim``) on an attention module: the logit scale.

Modules without a site receive the equivalent initialisation / learning-rate form instead.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ScaledLinear", "MultiplierState"]


class MultiplierState:
    """Mixin: writes the float sites named in ``_site_names`` to ``state_dict`` extra state."""

    _site_names: tuple[str, ...] = ()

    def get_extra_state(self) -> dict[str, Any]:
        return {name: float(getattr(self, name)) for name in self._site_names}

    def set_extra_state(self, state: Any) -> None:
        if not state:
            return
        for name in self._site_names:
            if name in state:
                setattr(self, name, float(state[name]))


class ScaledLinear(MultiplierState, nn.Linear):
    """``nn.Linear`` whose input is multiplied by the float ``input_multiplier`` (default 1).

    Shapes as ``nn.Linear``: input ``(..., in_features)``, output ``(..., out_features)``.
    The multiplication is skipped when the multiplier is exactly 1, so a base-shape model
    computes bit-identically to a plain ``nn.Linear``.
    """

    _site_names = ("input_multiplier",)

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kw: Any) -> None:
        super().__init__(in_features, out_features, bias=bias, **kw)
        self.input_multiplier = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_multiplier != 1.0:
            x = x * self.input_multiplier
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", input_multiplier={self.input_multiplier:.6g}"
