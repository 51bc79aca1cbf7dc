"""Pre-LayerNorm residual MLP: ``h <- h + branch_multiplier * W2 act(W1 LN(h))``."""
from __future__ import annotations

import torch
from torch import nn

from lmech._validation import check_int
from lmech.models.base import LmechModel, make_activation
from lmech.param.layers import MultiplierState, ScaledLinear

__all__ = ["ResMLP", "ResidualBlock"]


class ResidualBlock(MultiplierState, nn.Module):
    """One pre-LN residual block; ``branch_multiplier`` (a float site) scales the branch."""

    _site_names = ("branch_multiplier",)

    def __init__(self, width: int, expansion: int = 1, activation: str = "relu", bias: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = ScaledLinear(width, expansion * width, bias=bias)
        self.act = make_activation(activation)
        self.fc2 = ScaledLinear(expansion * width, width, bias=bias)
        self.branch_multiplier = 1.0

    def branch(self, h: torch.Tensor) -> torch.Tensor:
        """The residual branch ``F(h)`` before the multiplier."""
        return self.fc2(self.act(self.fc1(self.norm(h))))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        f = self.branch(h)
        if self.branch_multiplier != 1.0:
            f = f * self.branch_multiplier
        return h + f


class ResMLP(LmechModel):
    """Input layer, ``depth`` pre-LN residual blocks, final LayerNorm, readout.

    Parameters
    ----------
    d_in, d_out : int
        Input features and outputs.
    width : int
        Residual-stream width; the block's hidden layer has ``expansion * width`` units.
    depth : int
        Number of residual blocks (``m_L = depth / base_depth`` for the depth schemes).
    expansion : int
    activation : {"relu", "gelu", "tanh", "linear"}
    bias : bool
        Biases in the block and readout layers.

    Input ``(batch, d_in)``, output ``(batch, d_out)``.
    """

    lmech_blocks = "blocks"

    def __init__(self, d_in: int, d_out: int, width: int = 64, depth: int = 2, expansion: int = 1,
                 activation: str = "relu", bias: bool = False) -> None:
        d_in = check_int(d_in, "d_in", lo=1)
        d_out = check_int(d_out, "d_out", lo=1)
        width = check_int(width, "width", lo=1)
        depth = check_int(depth, "depth", lo=1)
        expansion = check_int(expansion, "expansion", lo=1)
        super().__init__(d_in=d_in, d_out=d_out, width=width, depth=depth, expansion=expansion,
                         activation=activation, bias=bias)
        self.width, self.depth = width, depth
        self.embed = ScaledLinear(d_in, width, bias=bias)
        self.blocks = nn.ModuleList([ResidualBlock(width, expansion, activation, bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.readout = ScaledLinear(width, d_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = block(h)
        return self.readout(self.norm(h))
