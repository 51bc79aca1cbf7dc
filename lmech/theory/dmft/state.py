"""Typed order parameters of the sampling DMFT iteration (one record per hidden layer).

The damped iteration (:mod:`lmech.theory.dmft.iteration`) only mixes, averages and compares
states; :func:`combine` applies an elementwise operation to every iterated order parameter of
one or more states of the same structure. Derived quantities (the NTK, the residual and the test
predictions: the closure) are recomputed by the solver after every such operation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["LayerState", "DMFTState", "combine"]


@dataclass
class LayerState:
    """Order parameters of hidden layer ``l``.

    Two-layer solver: ``Phi``, ``G`` equal-time kernels (T1, M, M). Deep solver: two-time
    kernels (T1 M, T1 M) and the pathwise responses ``A`` (of ``phi(h^l)`` to ``r^l``; None for
    the readout layer) and ``B`` (of ``g^l`` to ``u^l``; None for the first layer), each
    (T1, M, T1, P)."""

    Phi: torch.Tensor
    G: torch.Tensor
    A: torch.Tensor | None = None
    B: torch.Tensor | None = None


@dataclass
class DMFTState:
    """Iterated order parameters (``layers``, ``rho``: the O(lr^2) GD remainder, None for the
    flow closure) and the closure derived from them (``ntk`` (T1, M, M), ``delta`` (T1, P),
    ``ftest`` (T1, P'))."""

    layers: list[LayerState]
    rho: torch.Tensor | None = None
    ntk: torch.Tensor | None = field(default=None, compare=False)
    delta: torch.Tensor | None = field(default=None, compare=False)
    ftest: torch.Tensor | None = field(default=None, compare=False)

    def tensors(self) -> list[torch.Tensor]:
        """Every iterated order parameter, in a fixed order (the closure excluded)."""
        out: list[torch.Tensor] = []
        for ly in self.layers:
            out += [ly.Phi, ly.G] + [x for x in (ly.A, ly.B) if x is not None]
        return out + ([self.rho] if self.rho is not None else [])


def combine(fn: Callable[..., torch.Tensor], *states: DMFTState) -> DMFTState:
    """The state whose every order parameter is ``fn`` of the corresponding ones of ``states``
    (same structure); no closure."""

    def opt(get):
        first = get(states[0])
        return None if first is None else fn(*(get(s) for s in states))

    layers = [LayerState(Phi=fn(*(s.layers[i].Phi for s in states)), G=fn(*(s.layers[i].G for s in states)),
                         A=opt(lambda s, i=i: s.layers[i].A), B=opt(lambda s, i=i: s.layers[i].B))
              for i in range(len(states[0].layers))]
    return DMFTState(layers=layers, rho=opt(lambda s: s.rho))
