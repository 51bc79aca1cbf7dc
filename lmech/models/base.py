"""Shared base of the models in :mod:`lmech.models`."""
from __future__ import annotations

from typing import Any

from torch import nn

from lmech.param.parameterization import RECORD_ATTR

__all__ = ["LmechModel", "make_activation"]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "linear": nn.Identity}


def make_activation(name: str) -> nn.Module:
    from lmech._validation import check_choice

    check_choice(name, "activation", tuple(_ACTIVATIONS))
    return _ACTIVATIONS[name]()


class LmechModel(nn.Module):
    """Base class: keeps its constructor keywords in ``config`` (so a parameterization can
    build a meta-device probe at another width) and writes the parameterization record to
    its ``state_dict`` as extra state (so ``load_state_dict`` into a fresh model restores the
    roles; the multipliers are restored by each site module)."""

    lmech_blocks: str | None = None
    width: int
    depth: int

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.config = dict(config)

    def get_extra_state(self) -> dict[str, Any]:
        return {"lmech_param": getattr(self, RECORD_ATTR, None)}

    def set_extra_state(self, state: Any) -> None:
        record = state.get("lmech_param") if isinstance(state, dict) else None
        if record is not None:
            setattr(self, RECORD_ATTR, record)

    @property
    def n_params(self) -> int:
        """Number of distinct parameter entries (tied tensors counted once)."""
        return sum(p.numel() for p in self.parameters())
