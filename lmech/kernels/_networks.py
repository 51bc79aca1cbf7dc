"""The finite-width network whose infinite-width limits :mod:`lmech.kernels` computes."""
from __future__ import annotations

import math

import torch
from torch import nn

from lmech._validation import check_choice, check_int, check_real

__all__ = ["NTKMLP"]

_ACT = {"relu": torch.relu, "erf": torch.erf, "linear": lambda h: h}


class NTKMLP(nn.Module):
    """Fully connected network in NTK parameterisation.

    ``h^0 = sqrt(weight_var/d) W^0 x + sqrt(bias_var) b^0`` and
    ``h^l = sqrt(weight_var/width) W^l phi(h^{l-1}) + sqrt(bias_var) b^l`` for l = 1..depth,
    the last one being the readout (``n_out`` units); W, b standard normal. As ``width`` grows
    its NNGP and NTK at initialisation converge to :func:`lmech.kernels.nngp_mlp` and
    :func:`lmech.kernels.ntk_mlp` with the same arguments.

    Parameters
    ----------
    d_in, width, depth, n_out : int
        Input dimension, hidden width, number of hidden layers (>= 1), outputs.
    activation : {"relu", "erf", "linear"}
    weight_var, bias_var : float
    seed : int, optional
        Seed of the initialisation (a private generator; the global RNG is untouched).
    dtype : torch.dtype
    """

    def __init__(self, d_in: int, width: int, depth: int = 1, *, n_out: int = 1, activation: str = "relu",
                 weight_var: float = 2.0, bias_var: float = 0.0, seed: int | None = None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        d_in = check_int(d_in, "d_in", lo=1)
        width = check_int(width, "width", lo=1)
        depth = check_int(depth, "depth", lo=1)
        n_out = check_int(n_out, "n_out", lo=1)
        self.activation = check_choice(activation, "activation", tuple(_ACT))
        self.weight_var = check_real(weight_var, "weight_var", lo=0, lo_closed=False)
        self.bias_var = check_real(bias_var, "bias_var", lo=0)
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        fans = [d_in] + [width] * depth
        outs = [width] * depth + [n_out]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(o, i, generator=gen, dtype=dtype)) for i, o in zip(fans, outs)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.randn(o, generator=gen, dtype=dtype)) for o in outs
        ) if self.bias_var > 0 else None
        self._w_mult = [math.sqrt(self.weight_var / f) for f in fans]
        self._b_mult = math.sqrt(self.bias_var)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, d_in) -> (n, n_out)."""
        phi = _ACT[self.activation]
        h = x
        last = len(self.weights) - 1
        for layer, W in enumerate(self.weights):
            h = self._w_mult[layer] * (h @ W.T)
            if self.biases is not None:
                h = h + self._b_mult * self.biases[layer]
            if layer < last:
                h = phi(h)
        return h
