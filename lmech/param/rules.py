"""The scaling rules: one pure function per parameterization decision.

Every rule is written **relative to a base shape** (the convention of microsoft/mup and
nanoGPT-mup): with width multiplier ``m = width / base_width`` and depth multiplier
``m_L = depth / base_depth``, every scheme reduces to the same standard-parameterization
(SP) network at ``m = m_L = 1``. The tables implemented here are those of "Tensor
Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer" (Table 8
form: a ``1/m`` forward multiplier on the readout), of "Depthwise Hyperparameter Transfer
in Residual Networks: Dynamics and Scaling Limit" (residual branches multiplied by
``m_L^-1/2``) and of "Don't be lazy: CompleteP enables compute-efficient deep
transformers" (``m_L^-alpha`` branches with ``alpha = 1`` and in-block Adam learning rate
``m_L^(alpha-1)``).

A rule returns *factors* relative to the base values chosen by the user:

* ``std``: multiplies the base initial standard deviation ``init_std / sqrt(base fan-in)``;
* ``multiplier``: the forward multiplier applied to the tensor (``W x -> multiplier * W x``);
* ``lr``, ``eps``, ``wd``: multiply the learning rate, Adam epsilon and weight decay.

Weight decay is in the *coupled* form of ``torch.optim.AdamW`` and ``torch.optim.SGD``
(per-step shrink ``lr * weight_decay``); the rules keep that product width-independent
(``wd = 1 / width part of lr``).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SCHEMES",
    "OPTIMIZERS",
    "ROLE_KINDS",
    "SCHEME_ALPHA",
    "Factors",
    "width_factors",
    "depth_factors",
    "fold_multiplier",
    "branch_multiplier",
    "attention_scale",
    "MOE_ROLE_KINDS",
    "DOWN_INITS",
    "moe_factors",
]

SCHEMES = ("sp", "ntp", "mup", "depth_mup", "completep")
OPTIMIZERS = ("adam", "sgd")
ROLE_KINDS = ("input", "hidden", "readout", "bias", "gain", "scalar")
# roles of a mixture-of-experts layer (found by module, never assigned by pattern)
MOE_ROLE_KINDS = ("router", "expert_up", "expert_down")
DOWN_INITS = ("mean_field", "fan_in")

# depth exponent of the residual-branch multiplier m_L^-alpha; None = no depth rules at all
SCHEME_ALPHA: dict[str, float | None] = {
    "sp": None,
    "ntp": None,
    "mup": None,
    "depth_mup": 0.5,
    "completep": 1.0,
}


@dataclass(frozen=True)
class Factors:
    """Multiplicative factors of one parameter relative to the base model (all 1 at base)."""

    std: float = 1.0
    multiplier: float = 1.0
    lr: float = 1.0
    eps: float = 1.0
    wd: float = 1.0

    def times(self, other: "Factors") -> "Factors":
        return Factors(
            self.std * other.std,
            self.multiplier * other.multiplier,
            self.lr * other.lr,
            self.eps * other.eps,
            self.wd * other.wd,
        )


def width_factors(kind: str, scheme: str, optimizer: str, m_in: float, m_out: float, m: float) -> Factors:
    """Width factors of a parameter of role ``kind``.

    Parameters
    ----------
    kind : {"input", "hidden", "readout", "bias", "gain", "scalar"}
        Role of the tensor: ``input`` (fan-in fixed, fan-out grows), ``hidden`` (both grow),
        ``readout`` (fan-in grows, fan-out fixed), ``bias`` (1-d, grows), ``gain`` (norm
        weight or bias, grows), ``scalar`` (nothing grows).
    scheme : {"sp", "ntp", "mup", "depth_mup", "completep"}
        The depth schemes use the muP width rules.
    optimizer : {"adam", "sgd"}
        Adam-like (entrywise normalised update) or SGD-like.
    m_in, m_out : float
        Width multipliers of the tensor's fan-in and fan-out (1 for a fixed dimension).
    m : float
        Model width multiplier ``width / base_width`` (sets the Adam epsilon factor).

    Returns
    -------
    Factors
        Adam / AdamW (TP5 Table 8 form; ``-`` = 1):

        * SP: every factor 1, except ``std = m_in^-1/2`` for hidden and readout (fan-in init).
        * NTP: hidden and readout have ``multiplier = m_in^-1/2`` (parameter std fixed);
          ``lr = eps = m_in^-1`` for hidden, ``m^-1/2`` for every other growing role.
        * muP: hidden ``std = m_in^-1/2``, ``lr = m_in^-1``; readout ``multiplier = m_in^-1``
          with fixed std and lr; ``eps = m^-1`` for every growing role (every gradient
          scales like ``1/m``).

        SGD: SP and NTP use one learning rate. muP: ``lr * m_out`` for input, bias and gain
        (vectors whose fan-out grows), ``lr * m_in`` for the readout (Table 8 form),
        ``lr * m_out / m_in`` for hidden weights; init and multipliers as for Adam.

        ``scalar`` (nothing grows): all factors 1. Weight decay is ``1 / lr`` factor (coupled
        form: the per-step shrink ``lr * wd`` does not depend on width).
    """
    if kind == "scalar":
        return Factors()
    mu = scheme not in ("sp", "ntp")
    if kind in ("bias", "gain"):
        m_in = 1.0  # a vector's fan-in is treated as 1 (TP5)
    if kind == "input":
        m_in = 1.0
    if kind == "readout":
        m_out = 1.0
    std = mult = 1.0
    if kind in ("hidden", "readout"):
        if scheme == "sp":
            std = m_in**-0.5
        elif scheme == "ntp":
            mult = m_in**-0.5
        elif kind == "hidden":  # muP family
            std = m_in**-0.5
        else:  # muP readout, Table 8 form
            mult = 1.0 / m_in
    if optimizer == "adam":
        if scheme == "sp":
            lr = eps = 1.0
        elif scheme == "ntp":
            lr = eps = (1.0 / m_in) if kind == "hidden" else m**-0.5
        else:
            lr = (1.0 / m_in) if kind == "hidden" else 1.0
            eps = 1.0 / m
    else:  # sgd
        eps = 1.0
        if not mu:
            lr = 1.0
        elif kind == "readout":
            lr = m_in
        else:
            lr = m_out / m_in
    return Factors(std=std, multiplier=mult, lr=lr, eps=eps, wd=1.0 / lr)


def depth_factors(optimizer: str, alpha: float, m_L: float, *, wd_depth_compensation: bool = False) -> Factors:
    """Extra factors of a parameter inside a residual block under ``m_L^-alpha`` branches.

    Adam: ``lr * m_L^(alpha-1)``, ``eps * m_L^-alpha`` ("Don't be lazy: CompleteP ...",
    Table 1). SGD: ``lr * m_L^(2 alpha - 1)`` (the branch multiplier enters the gradient
    and the forward effect once each). No depth factor ever enters an initialisation.
    Weight decay is not depth-scaled (as in CompleteP's Table 1) unless
    ``wd_depth_compensation``, which keeps ``lr * wd`` depth-independent.
    """
    expo = (alpha - 1.0) if optimizer == "adam" else (2.0 * alpha - 1.0)
    lr = m_L**expo
    eps = m_L**-alpha if optimizer == "adam" else 1.0
    wd = 1.0 / lr if wd_depth_compensation else 1.0
    return Factors(lr=lr, eps=eps, wd=wd)


def fold_multiplier(f: Factors, optimizer: str) -> Factors:
    """The equivalent factors with the forward multiplier folded into the stored tensor.

    For ``W = a w`` trained with learning rate ``c`` the maps
    ``(a, std, c, eps, wd) -> (1, a std, a c, eps / a, wd / a)`` (Adam) and
    ``(1, a std, a^2 c, eps, wd / a^2)`` (SGD) leave the effective weight, its trajectory
    and the per-step decay ``lr * wd`` unchanged (Tensor Programs V, Tables 3 and 8). This
    is how a plain ``nn.Linear`` without a multiplier site receives muP or NTP.
    """
    a = f.multiplier
    if a == 1.0:
        return f
    if optimizer == "adam":
        return Factors(std=f.std * a, multiplier=1.0, lr=f.lr * a, eps=f.eps / a, wd=f.wd / a)
    return Factors(std=f.std * a, multiplier=1.0, lr=f.lr * a * a, eps=f.eps, wd=f.wd / (a * a))


def branch_multiplier(alpha: float | None, m_L: float) -> float:
    """Residual-branch multiplier ``m_L^-alpha`` (1 when the scheme has no depth rules)."""
    if alpha is None or alpha == 0.0:
        return 1.0
    return m_L**-alpha


def attention_scale(scheme: str, head_dim: float, base_head_dim: float) -> float:
    """Attention-logit scale ``base_head_dim^-1/2 * (head_dim / base_head_dim)^-p``.

    ``p = 1`` for the muP family (logits ``q.k / d_head`` once ``d_head`` grows) and
    ``p = 1/2`` for SP and NTP, so that the base model uses the usual ``1/sqrt(d_head)`` and
    a fixed ``d_head`` (heads added with width) gives the same scale in every scheme.
    """
    p = 0.5 if scheme in ("sp", "ntp") else 1.0
    return base_head_dim**-0.5 * (head_dim / base_head_dim) ** -p


def moe_factors(kind: str, scheme: str, optimizer: str, r_D: float, r_M: float, *, gamma: float = 1.0,
                down_init: str = "mean_field") -> Factors:
    """Width factors of a mixture-of-experts parameter (before the per-group constants).

    ``r_D = D / D_base`` (model width) and ``r_M = M / M_base`` (expert hidden width); the
    number of experts at fixed sparsity enters nowhere. Standard deviations are relative to
    the base fan-in init ``sigma / sqrt(D_base)`` (router, up) and ``sigma / sqrt(M_base)``
    (down). For the muP family with Adam, the table of "Hyperparameter Transfer with
    Mixture-of-Expert Layers" (no forward multipliers):

    ==============  ==========================  ===========  ==================
    role            std                         lr           eps
    ==============  ==========================  ===========  ==================
    router          ``r_D^-gamma``              ``r_D^-1``   ``r_D^-1``
    expert_up       ``r_D^-1/2``                ``r_D^-1``   ``r_M^-1``
    expert_down     ``r_D^1/2 r_M^-1``          ``r_M^-1``   ``r_D r_M^-2``
    ==============  ==========================  ===========  ==================

    so the down projection starts at ``sqrt(D) / M`` (mean-field in the expert width, not
    fan-in). ``down_init="fan_in"`` gives it ``r_M^-1/2`` instead (the control). SP and NTP
    give each tensor the rules of its shape (:func:`width_factors` with the router as a
    readout and the experts' matrices as hidden weights, multipliers folded). Weight decay:
    ``1 / lr``.

    Raises
    ------
    ValueError
        For SGD under the muP family (the paper treats Adam only).
    """
    if kind not in MOE_ROLE_KINDS:
        raise ValueError(f"kind: expected one of {MOE_ROLE_KINDS}; got {kind!r}")
    if down_init not in DOWN_INITS:
        raise ValueError(f"down_init: expected one of {DOWN_INITS}; got {down_init!r}")
    if scheme in ("sp", "ntp"):
        shape = {"router": ("readout", r_D, 1.0), "expert_up": ("hidden", r_D, r_M),
                 "expert_down": ("hidden", r_M, r_D)}[kind]
        f = width_factors(shape[0], scheme, optimizer, shape[1], shape[2], r_D)
        return fold_multiplier(f, optimizer)
    if optimizer != "adam":
        raise ValueError(f"optimizer: the mixture-of-experts rules of scheme {scheme!r} are derived for Adam only; "
                         f"got {optimizer!r}")
    if kind == "router":
        std, lr, eps = r_D**-gamma, 1.0 / r_D, 1.0 / r_D
    elif kind == "expert_up":
        std, lr, eps = r_D**-0.5, 1.0 / r_D, 1.0 / r_M
    else:
        std = r_D**0.5 / r_M if down_init == "mean_field" else r_M**-0.5
        lr, eps = 1.0 / r_M, r_D / r_M**2
    return Factors(std=std, lr=lr, eps=eps, wd=1.0 / lr)
