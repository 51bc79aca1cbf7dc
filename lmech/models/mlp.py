"""Fully connected network (no residual connections)."""
from __future__ import annotations

import torch
from torch import nn

from lmech._validation import check_int
from lmech.models.base import LmechModel, make_activation
from lmech.param.layers import ScaledLinear

__all__ = ["MLP"]


class MLP(LmechModel):
    """``depth`` linear layers of width ``width``: ``d_in -> width -> ... -> width -> d_out``.

    Every layer is a :class:`~lmech.param.layers.ScaledLinear`, so forward multipliers
    (muP readout ``1/m``, NTP ``m^-1/2``) are placed in the forward pass by a
    :class:`~lmech.param.Parameterization` rather than folded into the weights.

    Parameters
    ----------
    d_in, d_out : int
        Input features and outputs (classes).
    width : int
        Hidden width.
    depth : int
        Number of linear layers (>= 2): one input layer, ``depth - 2`` hidden layers and a
        readout.
    activation : {"relu", "gelu", "tanh", "linear"}
    bias : bool

    Input ``(batch, d_in)``, output ``(batch, d_out)`` logits.
    """

    def __init__(self, d_in: int, d_out: int, width: int = 64, depth: int = 3, activation: str = "relu",
                 bias: bool = True) -> None:
        d_in = check_int(d_in, "d_in", lo=1)
        d_out = check_int(d_out, "d_out", lo=1)
        width = check_int(width, "width", lo=1)
        depth = check_int(depth, "depth", lo=2)
        super().__init__(d_in=d_in, d_out=d_out, width=width, depth=depth, activation=activation, bias=bias)
        self.width, self.depth = width, depth
        self.layers = nn.ModuleList([ScaledLinear(d_in, width, bias=bias)])
        for _ in range(depth - 2):
            self.layers.append(ScaledLinear(width, width, bias=bias))
        self.act = make_activation(activation)
        self.readout = ScaledLinear(width, d_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = self.act(layer(x))
        return self.readout(x)
