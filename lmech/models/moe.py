"""A mixture-of-experts feed-forward block with sigmoid gates and bias-based load balancing.

The layer of "Hyperparameter Transfer with Mixture-of-Expert Layers":

    f(h) = (1 / n_act) * sum_{i in A(h)} sigmoid(r_i) E_i(h),   r = W_router h,
    A(h) = top_{n_act}(sigmoid(r) + b),   E_i(h) = W_down^(i) gelu(W_up^(i) h).

The gates are **not renormalised** (no softmax over the chosen experts, no division by
their sum); the ``1 / n_act`` prefactor keeps the output of order one when the number of
active experts grows at a fixed sparsity ``kappa = n_act / n_experts``. The choice of ``A``
carries no gradient: the router learns only through ``sigmoid(r_i)`` of the chosen experts.
Load balancing uses no auxiliary loss: the bias ``b`` (a buffer, never seen by the
optimizer) is moved after each training forward pass by ``b_i <- b_i - eta_b (load_i - kappa)``,
with ``load_i`` the fraction of the batch's tokens routed to expert ``i`` (mean ``kappa``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lmech._validation import check_int, check_real, fail
from lmech.param.layers import MultiplierState

__all__ = ["MoEFeedForward"]


class MoEFeedForward(MultiplierState, nn.Module):
    """Sparse mixture of ``n_experts`` GELU experts of hidden width ``expert_width``.

    Parameters
    ----------
    width : int
        Model width ``D`` (input and output size).
    n_experts, n_active : int
        Number of experts ``E`` and of experts chosen per token ``n_act`` (``1 <= n_act <= E``).
    expert_width : int
        Hidden width ``M`` of every expert (``alpha_ffn = M / D``).
    load_bias_lr : float
        Step ``eta_b`` of the load-balancing bias update (0 freezes the bias).

    Parameters of the module: ``router`` ``(E, D)``, ``up`` ``(E, M, D)``, ``down`` ``(E, D, M)``
    (each expert's weights in ``nn.Linear`` layout); buffer ``load_bias`` ``(E,)``. Float sites:
    ``combine_scale`` (default ``1 / n_act``) and ``load_bias_lr``. Input ``(..., D)``, output
    ``(..., D)``. The bias moves only in a training-mode forward pass with gradients enabled
    (once per pass: call the model once per optimizer step, or set ``load_bias_lr = 0`` and
    call :meth:`update_load_bias` by hand). ``last_load`` holds the latest pass's loads.

    Every expert is evaluated on every token and the unchosen ones are masked out (exact,
    and fastest at the sizes this library trains; the cost is ``1 / kappa`` times that of a
    sparse dispatch).
    """

    lmech_moe = True
    _site_names = ("combine_scale", "load_bias_lr")

    def __init__(self, width: int, n_experts: int, n_active: int, expert_width: int,
                 load_bias_lr: float = 0.01) -> None:
        super().__init__()
        width = check_int(width, "width", lo=1)
        self.n_experts = check_int(n_experts, "n_experts", lo=1)
        self.n_active = check_int(n_active, "n_active", lo=1)
        if self.n_active > self.n_experts:
            fail("n_active", f"<= n_experts ({self.n_experts})", n_active)
        self.expert_width = check_int(expert_width, "expert_width", lo=1)
        self.width = width
        E, M = self.n_experts, self.expert_width
        self.router = nn.Parameter(torch.randn(E, width) / math.sqrt(width))
        self.up = nn.Parameter(torch.randn(E, M, width) / math.sqrt(width))
        self.down = nn.Parameter(torch.randn(E, width, M) / math.sqrt(M))
        self.register_buffer("load_bias", torch.zeros(E))
        self.combine_scale = 1.0 / self.n_active
        self.load_bias_lr = float(check_real(load_bias_lr, "load_bias_lr", lo=0.0))
        self.last_load: torch.Tensor | None = None

    @property
    def kappa(self) -> float:
        """Sparsity ``n_active / n_experts``."""
        return self.n_active / self.n_experts

    def route(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gates and choice for tokens ``h`` ``(N, D)``: ``(sigmoid(r) (N, E), 0/1 mask (N, E))``.

        The mask is the top-``n_act`` of ``sigmoid(r) + b``, computed without gradient.
        """
        gates = torch.sigmoid(h @ self.router.t())
        with torch.no_grad():
            chosen = torch.topk(gates + self.load_bias, self.n_active, dim=-1).indices
            mask = torch.zeros_like(gates).scatter_(-1, chosen, 1.0)
        return gates, mask

    def experts(self, h: torch.Tensor) -> torch.Tensor:
        """Every expert's output on every token: ``E_i(h)`` as ``(N, E, D)``."""
        return torch.einsum("nem,edm->ned", F.gelu(torch.einsum("nd,emd->nem", h, self.up)), self.down)

    def update_load_bias(self, load: torch.Tensor) -> None:
        """``b <- b - load_bias_lr * (load - kappa)`` (outside any optimizer)."""
        with torch.no_grad():
            self.load_bias.sub_(self.load_bias_lr * (load.to(self.load_bias) - self.kappa))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, x.shape[-1])
        gates, mask = self.route(h)
        act = F.gelu(torch.einsum("nd,emd->nem", h, self.up)) * (gates * mask).unsqueeze(-1)
        out = torch.einsum("nem,edm->nd", act, self.down)
        if self.combine_scale != 1.0:
            out = out * self.combine_scale
        self.last_load = mask.mean(0)
        if self.training and torch.is_grad_enabled() and self.load_bias_lr > 0.0:
            self.update_load_bias(self.last_load)
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        return (f"width={self.width}, n_experts={self.n_experts}, n_active={self.n_active}, "
                f"expert_width={self.expert_width}, combine_scale={self.combine_scale:.4g}, "
                f"load_bias_lr={self.load_bias_lr:g}")
