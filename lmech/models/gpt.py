"""A small pre-LN GPT (character level, multi-head causal attention), nanoGPT-style."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lmech._validation import check_int, fail
from lmech.models.base import LmechModel
from lmech.models.moe import MoEFeedForward
from lmech.param.layers import MultiplierState, ScaledLinear

__all__ = ["GPT", "CausalSelfAttention", "GPTBlock"]


class CausalSelfAttention(MultiplierState, nn.Module):
    """Multi-head causal self-attention with a float logit-scale site ``attn_scale``.

    ``softmax(attn_scale * q k^T + causal mask) v``; ``attn_scale`` defaults to
    ``head_dim^-1/2`` and is set by the parameterization (``1/head_dim`` growth for muP when
    ``head_dim`` grows with width). ``logit_hook``, when set to a callable, receives the
    attention logits ``(batch, heads, T, T)`` (used by the coordinate check).
    """

    _site_names = ("attn_scale",)

    def __init__(self, width: int, n_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        inner = n_heads * head_dim
        self.q = ScaledLinear(width, inner, bias=False)
        self.q.lmech_query = True
        self.k = ScaledLinear(width, inner, bias=False)
        self.v = ScaledLinear(width, inner, bias=False)
        self.o = ScaledLinear(inner, width, bias=False)
        self.attn_scale = head_dim**-0.5
        self.logit_hook: Callable[[torch.Tensor], None] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        shape = (B, T, self.n_heads, self.head_dim)
        q = self.q(x).view(shape).transpose(1, 2)
        k = self.k(x).view(shape).transpose(1, 2)
        v = self.v(x).view(shape).transpose(1, 2)
        if self.logit_hook is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.attn_scale)
        else:
            logits = (q @ k.transpose(-2, -1)) * self.attn_scale
            self.logit_hook(logits)
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            y = logits.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        return self.o(y.transpose(1, 2).reshape(B, T, -1))


class GPTBlock(MultiplierState, nn.Module):
    """Pre-LN transformer block; both sub-blocks are scaled by ``branch_multiplier``.

    The feed-forward sub-block is a GELU MLP (``fc1``, ``fc2``) or, given ``moe=(n_experts,
    n_active, expert_width)``, a :class:`~lmech.models.moe.MoEFeedForward` (``moe``).
    """

    _site_names = ("branch_multiplier",)

    def __init__(self, width: int, n_heads: int, head_dim: int, mlp_ratio: int = 4,
                 moe: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, n_heads, head_dim)
        self.ln2 = nn.LayerNorm(width)
        self.moe = MoEFeedForward(width, *moe) if moe is not None else None
        if moe is None:
            self.fc1 = ScaledLinear(width, mlp_ratio * width, bias=False)
            self.fc2 = ScaledLinear(mlp_ratio * width, width, bias=False)
        self.branch_multiplier = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attn(self.ln1(x))
        if self.branch_multiplier != 1.0:
            a = a * self.branch_multiplier
        x = x + a
        f = self.moe(self.ln2(x)) if self.moe is not None else self.fc2(F.gelu(self.fc1(self.ln2(x))))
        if self.branch_multiplier != 1.0:
            f = f * self.branch_multiplier
        return x + f


class GPT(LmechModel):
    """Character-level pre-LN GPT.

    Parameters
    ----------
    vocab_size : int
    seq_len : int
        Maximum context length (learned position embeddings).
    width : int
        ``d_model``.
    depth : int
        Number of transformer blocks.
    head_dim : int, optional
        Fixed head dimension (default 16): the number of heads grows with width
        (``width / head_dim``), the recommended way to widen attention.
    n_heads : int, optional
        Fixed number of heads instead (then ``head_dim = width / n_heads`` grows and the muP
        attention scale ``1/head_dim`` matters). Give at most one of the two.
    mlp_ratio : int
        FFN hidden size ``mlp_ratio * width``.
    tie_weights : bool
        Share the token embedding with the readout (``lm_head``).
    n_experts : int, optional
        Replace every block's MLP by a mixture of ``n_experts`` experts
        (:class:`~lmech.models.moe.MoEFeedForward`; ``mlp_ratio`` is then unused).
    n_active : int
        Experts chosen per token (sparsity ``kappa = n_active / n_experts``).
    expert_width : int, optional
        Hidden width of each expert; default ``width`` (``alpha_ffn = 1``, so it grows with the
        width). Give a number to hold it fixed while the width changes.

    Input ``(batch, T)`` token ids with ``T <= seq_len``; output ``(batch, T, vocab_size)``.
    """

    lmech_blocks = "blocks"

    def __init__(self, vocab_size: int, seq_len: int = 64, width: int = 64, depth: int = 2,
                 head_dim: int | None = None, n_heads: int | None = None, mlp_ratio: int = 4,
                 tie_weights: bool = False, n_experts: int | None = None, n_active: int = 1,
                 expert_width: int | None = None) -> None:
        vocab_size = check_int(vocab_size, "vocab_size", lo=1)
        seq_len = check_int(seq_len, "seq_len", lo=1)
        width = check_int(width, "width", lo=1)
        depth = check_int(depth, "depth", lo=1)
        mlp_ratio = check_int(mlp_ratio, "mlp_ratio", lo=1)
        if head_dim is not None and n_heads is not None:
            fail("n_heads", "None when `head_dim` is given (fix one of them)", n_heads)
        if n_heads is not None:
            n_heads = check_int(n_heads, "n_heads", lo=1)
            if width % n_heads:
                fail("width", f"divisible by n_heads={n_heads}", width)
            hd = width // n_heads
        else:
            hd = check_int(16 if head_dim is None else head_dim, "head_dim", lo=1)
            if width % hd:
                fail("width", f"divisible by head_dim={hd}", width)
        heads = width // hd
        moe = None
        if n_experts is not None:
            n_experts = check_int(n_experts, "n_experts", lo=1)
            n_active = check_int(n_active, "n_active", lo=1, hi=n_experts)
            moe = (n_experts, n_active, width if expert_width is None else check_int(expert_width, "expert_width", lo=1))
        extra = {} if moe is None else dict(n_experts=n_experts, n_active=n_active, expert_width=expert_width)
        super().__init__(vocab_size=vocab_size, seq_len=seq_len, width=width, depth=depth, head_dim=head_dim,
                         n_heads=n_heads, mlp_ratio=mlp_ratio, tie_weights=tie_weights, **extra)
        self.width, self.depth, self.seq_len = width, depth, seq_len
        self.wte = nn.Embedding(vocab_size, width)
        self.wpe = nn.Embedding(seq_len, width)
        self.blocks = nn.ModuleList([GPTBlock(width, heads, hd, mlp_ratio, moe) for _ in range(depth)])
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = ScaledLinear(width, vocab_size, bias=False)
        if tie_weights:
            self.lm_head.weight = self.wte.weight
        self.register_buffer("pos", torch.arange(seq_len), persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[-1]
        h = self.wte(idx) + self.wpe(self.pos[:T])
        for block in self.blocks:
            h = block(h)
        return self.lm_head(self.ln_f(h))
