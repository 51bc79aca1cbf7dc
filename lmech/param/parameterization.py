"""``Parameterization``: initialise a model and build optimizer parameter groups per scheme.

Implements SP, NTP, muP ("Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer", Table 8 form), depth-muP (``1/sqrt(depth)`` residual branches,
"Depthwise Hyperparameter Transfer in Residual Networks: Dynamics and Scaling Limit") and
CompleteP (``1/depth`` branches, "Don't be lazy: CompleteP enables compute-efficient deep
transformers"), for Adam/AdamW and SGD, on ordinary ``nn.Module`` s.

Usage::

    p = Parameterization("mup", base_width=64, base_depth=2)
    p.apply(model)                       # initialise in place, set forward multipliers
    opt = torch.optim.AdamW(p.param_groups(model, lr=3e-3, weight_decay=0.1))

Nothing wraps or subclasses the optimizer: ``param_groups`` returns plain ``list[dict]``
(one group per distinct ``(lr, eps, weight_decay)``; each carries ``names``, ``roles`` and
``lr_scale`` for logging and schedulers, and ``lmech_optimizer``, checked at the first
``step()`` so that Adam groups are not silently trained by SGD or the reverse).
"""
from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, asdict, dataclass
from typing import Any

import torch
from torch import nn

from lmech._validation import check_choice, check_int, check_real, fail
from lmech.param.roles import HeadDimWarning, Layout, Role, classify, clean_name, unwrap
from lmech.param.rules import (
    DOWN_INITS,
    MOE_ROLE_KINDS,
    OPTIMIZERS,
    ROLE_KINDS,
    SCHEME_ALPHA,
    SCHEMES,
    Factors,
    attention_scale,
    branch_multiplier,
    depth_factors,
    fold_multiplier,
    moe_factors,
    width_factors,
)

__all__ = ["Parameterization", "MoERules", "RECORD_ATTR", "GROUP_TAG", "optimizer_family", "check_optimizer"]

RECORD_ATTR = "_lmech_param"
GROUP_TAG = "lmech_optimizer"
_WD_MODES = ("coupled", "independent")

# stock optimizers by update geometry; anything else (custom optimizers) is not checked
_ADAM_FAMILY = tuple(getattr(torch.optim, n) for n in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad",
                                                        "RMSprop", "Adadelta", "SparseAdam") if hasattr(torch.optim, n))
_SGD_FAMILY = (torch.optim.SGD,)


def optimizer_family(optimizer: torch.optim.Optimizer) -> str | None:
    """``"adam"`` (entrywise normalised stock optimizers), ``"sgd"`` (``torch.optim.SGD``) or None."""
    if isinstance(optimizer, _SGD_FAMILY):
        return "sgd"
    if isinstance(optimizer, _ADAM_FAMILY):
        return "adam"
    return None


def check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Raise ValueError if ``optimizer`` holds lmech groups built for another update geometry.

    Groups from :meth:`Parameterization.param_groups` carry the key ``"lmech_optimizer"``
    (``"adam"`` or ``"sgd"``); a stock optimizer of the other family would apply the wrong
    learning-rate, epsilon and weight-decay factors without any error. Optimizers outside
    ``torch.optim``'s Adam-like and SGD classes are not checked.
    """
    family = optimizer_family(optimizer)
    if family is None:
        return
    for i, group in enumerate(optimizer.param_groups):
        tag = group.get(GROUP_TAG)
        if tag is not None and tag != family:
            names = group.get("names", [])
            raise ValueError(
                f"optimizer: {type(optimizer).__module__}.{type(optimizer).__qualname__} ({family!r} family) holds "
                f"parameter group {i} {names[:3]} built for optimizer={tag!r}; build the groups with "
                f"Parameterization(..., optimizer={family!r}) (learning-rate, epsilon and weight-decay factors "
                "differ between Adam-like and SGD updates)"
            )


# Checked once per optimizer and per number of groups (add_param_group re-checks); the hook
# is global because param_groups() never sees the optimizer it feeds, and it costs one
# dictionary lookup per step.
_checked: "weakref.WeakKeyDictionary[torch.optim.Optimizer, int]" = weakref.WeakKeyDictionary()
_hook_handle = None


def _step_pre_hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    n = len(optimizer.param_groups)
    if _checked.get(optimizer) == n:
        return
    check_optimizer(optimizer)
    _checked[optimizer] = n


def _install_step_hook() -> None:
    global _hook_handle
    if _hook_handle is None:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        _hook_handle = register_optimizer_step_pre_hook(_step_pre_hook)


def _merge_key(x: float) -> float:
    """Hyperparameter value rounded to 12 significant digits (merges float-noise duplicates)."""
    return float(f"{x:.12g}")


@dataclass(frozen=True)
class MoERules:
    """Choices for mixture-of-experts layers (see :class:`lmech.models.moe.MoEFeedForward`).

    The exponents are those of :func:`lmech.param.rules.moe_factors`; the defaults of the
    per-group constants are the values tuned at the base model in "Hyperparameter Transfer
    with Mixture-of-Expert Layers" (App. D.1): learning rate x1/16 on the router and the
    expert down-projection, init x1/4 on the down-projection. They apply in every scheme.

    Attributes
    ----------
    base_expert_width : int, optional
        Expert hidden width ``M_base`` at the base shape (``r_M = M / M_base``). Default:
        ``M * base_width / width``, i.e. ``alpha_ffn = M / D`` as at the base.
    down_init : {"mean_field", "fan_in"}
        Down-projection init ``sqrt(D) / M`` (the paper's rule) or ``1 / sqrt(M)`` (fan-in).
    router_gamma : float
        Router init ``r_D^-gamma`` (1 in the paper's main text).
    router_init, down_init_scale : float
        Init constants of the router (0: a zero router) and of the down-projection.
    router_lr, down_lr : float
        Learning-rate constants of the router and the down-projection.
    load_bias_std : float
        Std of the load-balancing bias at init (0: zeros, the main text; > 0 as in App. E).
    load_bias_lr : float
        Step ``eta_b`` of the bias update ``b <- b - eta_b (load - kappa)``, width-independent
        and outside the optimizer (the paper does not publish its value).

    Raises
    ------
    ValueError
        For a zero router with a zero bias: every gate is ``sigmoid(0) = 1/2`` and the top-k
        breaks the tie by expert index, so the same experts serve every token.
    """

    base_expert_width: int | None = None
    down_init: str = "mean_field"
    router_gamma: float = 1.0
    router_init: float = 1.0
    down_init_scale: float = 0.25
    router_lr: float = 1.0 / 16
    down_lr: float = 1.0 / 16
    load_bias_std: float = 0.0
    load_bias_lr: float = 0.01

    def __post_init__(self) -> None:
        if self.base_expert_width is not None:
            object.__setattr__(self, "base_expert_width", check_int(self.base_expert_width, "base_expert_width", lo=1))
        check_choice(self.down_init, "down_init", DOWN_INITS)
        for name in ("router_gamma", "router_init", "load_bias_std", "load_bias_lr"):
            object.__setattr__(self, name, check_real(getattr(self, name), name, lo=0.0))
        for name in ("down_init_scale", "router_lr", "down_lr"):
            object.__setattr__(self, name, check_real(getattr(self, name), name, lo=0.0, lo_closed=False))
        if self.router_init == 0.0 and self.load_bias_std == 0.0:
            fail("router_init", "> 0 unless load_bias_std > 0 (a zero router with a zero load bias ties every gate "
                 "at sigmoid(0) = 1/2, so top-k picks the same experts, by index, for every token)", self.router_init)


@dataclass(frozen=True)
class Parameterization:
    """A width/depth parameterization relative to a base shape.

    Parameters
    ----------
    scheme : {"sp", "ntp", "mup", "depth_mup", "completep"}
        ``sp``: standard (fan-in init, one learning rate). ``ntp``: neural-tangent
        parameterization (fixed-std parameters with ``m^-1/2`` forward multipliers; the
        kernel regime). ``mup``: maximal-update parameterization (TP5 Table 8: hidden
        ``std ~ m^-1/2`` and Adam ``lr / m``, readout multiplier ``1/m``, Adam ``eps / m``;
        SGD ``lr * m`` on vectors and the readout). ``depth_mup``: muP with residual
        branches multiplied by ``m_L^-1/2``. ``completep``: muP with ``m_L^-1`` branches.
    base_width : int
        Width the hyperparameters were tuned at (``m = width / base_width``).
    base_depth : int
        Number of residual blocks at the base shape (``m_L = depth / base_depth``).
    optimizer : {"adam", "sgd"}
        Update geometry the groups are for: ``adam`` covers Adam/AdamW and other entrywise
        normalised optimizers, ``sgd`` plain or momentum SGD.
    alpha : float, optional
        Depth exponent of the branch multiplier ``m_L^-alpha``; default 1/2 for
        ``depth_mup`` and 1 for ``completep``; only these two schemes accept it. In-block
        parameters then get Adam ``lr * m_L^(alpha-1)``, ``eps * m_L^-alpha`` and SGD
        ``lr * m_L^(2 alpha - 1)``.
    init_std : float
        Base initial scale sigma: a weight of base fan-in ``n`` starts with std
        ``sigma / sqrt(n)`` at the base shape; embeddings with std ``sigma``.
    zero_readout, zero_query : bool
        Zero-initialise readout weights / attention query weights (recommended for muP by
        TP5; off by default so that every scheme equals SP at the base shape).
    wd_mode : {"coupled", "independent"}
        How ``weight_decay`` is read. ``coupled`` (default): the value handed to
        ``torch.optim.AdamW``/``SGD``, whose per-step shrink is ``lr * weight_decay``; the
        groups rescale it by ``1 / lr factor`` so that the shrink is width-independent
        (e.g. muP hidden weights get ``weight_decay * m`` under Adam). ``independent``:
        ``weight_decay`` is the per-step shrink itself; each group gets
        ``weight_decay / lr_group``.
    wd_depth_compensation : bool
        Also keep ``lr * wd`` depth-independent in residual blocks (CompleteP's Table 1
        scales weight decay by width only; default False matches it).
    moe : MoERules or dict
        Rules and constants of mixture-of-experts layers (router, expert up, expert down and
        the load-balancing bias, a buffer outside the optimizer); see :class:`MoERules`.

    Notes
    -----
    Forward multipliers are placed at *sites* (float attributes on modules, see
    :mod:`lmech.param.layers`). A weight whose module has no site (e.g. a plain
    ``nn.Linear`` readout) receives the equivalent form: for ``W = a w`` the maps
    ``std -> a std``, Adam ``lr -> a lr``, ``eps -> eps / a``, ``wd -> wd / a``
    (SGD: ``lr -> a^2 lr``, ``wd -> wd / a^2``) leave the training trajectory unchanged.
    Residual-branch multipliers need a ``branch_multiplier`` site on every block.

    Weight decay targets decoupled decay as implemented by ``torch.optim.AdamW`` (the
    shrink multiplies the group's learning rate, which the rules account for). With
    ``torch.optim.Adam`` the decay is an L2 term inside the normalised update and does not
    transfer; use AdamW.
    """

    scheme: str
    _: KW_ONLY
    base_width: int
    base_depth: int = 1
    optimizer: str = "adam"
    alpha: float | None = None
    init_std: float = 1.0
    zero_readout: bool = False
    zero_query: bool = False
    wd_mode: str = "coupled"
    wd_depth_compensation: bool = False
    moe: MoERules = MoERules()

    def __post_init__(self) -> None:
        if isinstance(self.moe, Mapping):
            object.__setattr__(self, "moe", MoERules(**dict(self.moe)))
        elif not isinstance(self.moe, MoERules):
            fail("moe", "a MoERules or a dict of its fields", self.moe, TypeError)
        check_choice(self.scheme, "scheme", SCHEMES)
        object.__setattr__(self, "base_width", check_int(self.base_width, "base_width", lo=1))
        object.__setattr__(self, "base_depth", check_int(self.base_depth, "base_depth", lo=1))
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        if self.alpha is not None:
            if SCHEME_ALPHA[self.scheme] is None:
                fail("alpha", f"None for scheme {self.scheme!r} (only depth_mup and completep take a depth exponent)",
                     self.alpha)
            object.__setattr__(self, "alpha", check_real(self.alpha, "alpha", lo=0.0, hi=2.0))
        object.__setattr__(self, "init_std", check_real(self.init_std, "init_std", lo=0.0, lo_closed=False))
        check_choice(self.wd_mode, "wd_mode", _WD_MODES)
        for name in ("zero_readout", "zero_query", "wd_depth_compensation"):
            if not isinstance(getattr(self, name), bool):
                fail(name, "a bool", getattr(self, name), TypeError)

    # ------------------------------------------------------------------ scalar rules
    @property
    def depth_exponent(self) -> float | None:
        """The alpha in use (None: the scheme has no depth rules)."""
        return self.alpha if self.alpha is not None else SCHEME_ALPHA[self.scheme]

    def branch_multiplier(self, depth: int) -> float:
        """Residual-branch multiplier ``(depth / base_depth)^-alpha`` (1 without depth rules)."""
        depth = check_int(depth, "depth", lo=1)
        return branch_multiplier(self.depth_exponent, depth / self.base_depth)

    def attention_scale(self, head_dim: int, base_head_dim: float | None = None) -> float:
        """Attention-logit scale for ``F.scaled_dot_product_attention(scale=...)``.

        ``base_head_dim^-1/2 (head_dim / base_head_dim)^-p`` with ``p = 1`` for the muP
        family and ``1/2`` for SP/NTP (so fixed ``head_dim`` keeps ``1/sqrt(head_dim)``).
        """
        head_dim = check_int(head_dim, "head_dim", lo=1)
        base = float(head_dim) if base_head_dim is None else check_real(base_head_dim, "base_head_dim", lo=0.0,
                                                                          lo_closed=False)
        return attention_scale(self.scheme, head_dim, base)

    def init_key(self) -> dict[str, Any]:
        """The fields that decide initialisation and forward multipliers (not the optimizer groups)."""
        d = self.state_dict()
        for k in ("optimizer", "wd_mode", "wd_depth_compensation"):
            d.pop(k)
        for k in ("router_lr", "down_lr", "load_bias_lr"):
            d["moe"].pop(k)
        return d

    def _compatible(self, record: Mapping[str, Any]) -> bool:
        other = Parameterization.from_state_dict(record["parameterization"])
        return other.init_key() == self.init_key()

    # ------------------------------------------------------------------ (de)serialisation
    def state_dict(self) -> dict[str, Any]:
        """Plain dict of the configuration (JSON-serialisable)."""
        d = asdict(self)
        d.pop("_", None)
        return d

    @classmethod
    def from_state_dict(cls, d: Mapping[str, Any]) -> "Parameterization":
        d = dict(d)
        scheme = d.pop("scheme")
        return cls(scheme, **d)

    # ------------------------------------------------------------------ layout
    def layout(
        self,
        model: nn.Module,
        *,
        width: int | None = None,
        depth: int | None = None,
        base_model: nn.Module | None = None,
        roles: Mapping[str, str] | None = None,
        blocks: str | None = None,
    ) -> Layout:
        """The role table of ``model`` (stored one if the model was applied, else classified).

        See :func:`lmech.param.roles.classify` for the arguments.
        """
        if not isinstance(model, nn.Module):
            fail("model", "an torch.nn.Module", model, TypeError)
        inner = unwrap(model)
        record = getattr(inner, RECORD_ATTR, None)
        if record is not None:
            if not self._compatible(record):
                raise ValueError(
                    f"`model` was initialised by {Parameterization.from_state_dict(record['parameterization'])!r}, "
                    f"not by {self!r}; call apply() with this parameterization first"
                )
            return Layout.from_dict(record["layout"])
        return classify(
            inner, base_width=self.base_width, base_depth=self.base_depth, width=width, depth=depth,
            base_model=base_model, roles=roles, blocks=blocks,
        )

    def factors(self, layout: Layout) -> dict[str, Factors]:
        """Final per-parameter factors (width x depth rules, multipliers folded where no site)."""
        return {name: self._factors(role, layout, name) for name, role in layout.roles.items()}

    def expert_width_multiplier(self, layout: Layout, site: str) -> float:
        """``r_M = M / M_base`` of the mixture-of-experts layer ``site`` (see :class:`MoERules`)."""
        M = layout.moe_sites[site][2]
        base = self.moe.base_expert_width
        return M / base if base is not None else layout.width / self.base_width

    def _base_fan_in(self, name: str, role: Role, layout: Layout) -> float:
        if role.kind == "expert_down":
            return role.fan_in / self.expert_width_multiplier(layout, name.rsplit(".", 1)[0])
        return role.fan_in / role.m_in

    def _factors(self, role: Role, layout: Layout, name: str = "") -> Factors:
        opt = self.optimizer
        if role.kind in MOE_ROLE_KINDS:
            site = name.rsplit(".", 1)[0]
            if site not in layout.moe_sites:
                raise ValueError(f"parameter {name!r} has role {role.kind!r} but {site!r} is not a mixture-of-experts "
                                 "layer (a module with `lmech_moe = True`)")
            r = self.moe
            f = moe_factors(role.kind, self.scheme, opt, role.m_in if role.kind != "expert_down" else role.m_out,
                            self.expert_width_multiplier(layout, site), gamma=r.router_gamma, down_init=r.down_init)
            c_std, c_lr = {"router": (r.router_init, r.router_lr), "expert_up": (1.0, 1.0),
                           "expert_down": (r.down_init_scale, r.down_lr)}[role.kind]
            f = f.times(Factors(std=c_std, lr=c_lr, wd=1.0 / c_lr))
        else:
            f = width_factors(role.kind, self.scheme, opt, role.m_in, role.m_out, layout.m)
        alpha = self.depth_exponent
        if role.in_block and alpha is not None:
            f = f.times(depth_factors(opt, alpha, layout.m_L, wd_depth_compensation=self.wd_depth_compensation))
        if f.multiplier != 1.0 and role.site is None:
            f = fold_multiplier(f, opt)
        return f

    def _readout_multiplier(self, role: Role, layout: Layout) -> float:
        return width_factors("readout", self.scheme, self.optimizer, layout.m, 1.0, layout.m).multiplier

    # ------------------------------------------------------------------ apply / attach
    def apply(
        self,
        model: nn.Module,
        *,
        width: int | None = None,
        depth: int | None = None,
        base_model: nn.Module | None = None,
        roles: Mapping[str, str] | None = None,
        blocks: str | None = None,
        generator: torch.Generator | None = None,
        reinit: bool = False,
        reinit_frozen: bool = False,
    ) -> nn.Module:
        """Initialise ``model`` in place and set its forward multipliers; returns ``model``.

        Weights are drawn N(0, std^2) in ``named_parameters()`` order with
        ``std = init_std / sqrt(base fan-in) * factor``; biases and norm biases start at 0,
        norm gains at 1. The decisions are recorded on the model (a plain dict attribute,
        kept by ``deepcopy``/pickle and, for :mod:`lmech.models`, by ``state_dict``).
        Applying the same parameterization again (same init-relevant fields, see
        :meth:`init_key`) is a no-op unless ``reinit``. On the meta device nothing is
        drawn; call ``apply`` again after ``model.to_empty(...)``.

        Frozen tensors (``requires_grad=False``, e.g. loaded pretrained parts) keep their
        values unless ``reinit_frozen=True``; they still get roles and forward multipliers.
        """
        if not isinstance(reinit_frozen, bool):
            fail("reinit_frozen", "a bool", reinit_frozen, TypeError)
        inner = unwrap(model)
        record = getattr(inner, RECORD_ATTR, None)
        after_meta = record is not None and not record.get("initialized", True)
        if record is not None and self._compatible(record) and not reinit and record.get("initialized", True):
            return model
        if record is not None:
            delattr(inner, RECORD_ATTR)
        layout = classify(
            inner, base_width=self.base_width, base_depth=self.base_depth, width=width, depth=depth,
            base_model=base_model, roles=roles, blocks=blocks,
        )
        self._install(inner, layout)
        params = dict(inner.named_parameters())
        factors = self.factors(layout)
        on_meta = any(p.device.type == "meta" for p in params.values())
        with torch.no_grad():
            for name, role in layout.roles.items():
                p = params[name]
                if p.device.type == "meta":
                    continue
                if not p.requires_grad and not reinit_frozen and not after_meta:
                    continue
                init = role.init
                if init == "normal" and ((self.zero_readout and role.kind == "readout") or (self.zero_query and role.query)):
                    init = "zeros"
                if init == "normal" and factors[name].std == 0.0:
                    init = "zeros"
                if init == "normal":
                    std = self.init_std / math.sqrt(self._base_fan_in(name, role, layout)) * factors[name].std
                    p.normal_(0.0, std, generator=generator)
                elif init == "zeros":
                    p.zero_()
                elif init == "ones":
                    p.fill_(1.0)
            for site in layout.moe_sites:
                bias = inner.get_submodule(site).get_buffer("load_bias")
                if bias.device.type == "meta":
                    continue
                if self.moe.load_bias_std > 0.0:
                    bias.normal_(0.0, self.moe.load_bias_std, generator=generator)
                else:
                    bias.zero_()
        # a meta-device model is only *described*: apply() again after ``to_empty`` initialises it
        self._record(inner, layout, initialized=not on_meta)
        return model

    def attach(
        self,
        model: nn.Module,
        *,
        width: int | None = None,
        depth: int | None = None,
        base_model: nn.Module | None = None,
        roles: Mapping[str, str] | None = None,
        blocks: str | None = None,
    ) -> nn.Module:
        """Set forward multipliers and the record **without** touching the weights.

        Use after ``load_state_dict`` into a fresh model that is not one of
        :mod:`lmech.models` (those restore multipliers from their ``state_dict``).
        """
        inner = unwrap(model)
        if hasattr(inner, RECORD_ATTR):
            delattr(inner, RECORD_ATTR)
        layout = classify(
            inner, base_width=self.base_width, base_depth=self.base_depth, width=width, depth=depth,
            base_model=base_model, roles=roles, blocks=blocks,
        )
        self._install(inner, layout)
        self._record(inner, layout)
        return model

    def _record(self, inner: nn.Module, layout: Layout, initialized: bool = True) -> None:
        setattr(inner, RECORD_ATTR, {"parameterization": self.state_dict(), "layout": layout.to_dict(),
                                     "initialized": initialized})

    def _install(self, inner: nn.Module, layout: Layout) -> None:
        opt = self.optimizer
        for name, role in layout.roles.items():
            f = width_factors(role.kind, self.scheme, opt, role.m_in, role.m_out, layout.m)
            if role.site is not None:
                setattr(inner.get_submodule(role.site), "input_multiplier", float(f.multiplier))
            if role.tied:
                mult = self._readout_multiplier(role, layout)
                if role.readout_site is not None:
                    setattr(inner.get_submodule(role.readout_site), "input_multiplier", float(mult))
                elif mult != 1.0:
                    raise ValueError(
                        f"tied weight {name!r} is used as a readout by a module without an `input_multiplier` "
                        f"site; scheme {self.scheme!r} needs readout multiplier {mult:g} there (use "
                        "lmech.param.layers.ScaledLinear for the readout)"
                    )
        for site in layout.moe_sites:
            setattr(inner.get_submodule(site), "load_bias_lr", float(self.moe.load_bias_lr))
        bm = branch_multiplier(self.depth_exponent, layout.m_L)
        if layout.blocks is not None and bm != 1.0:
            prefix = f"{layout.blocks}." if layout.blocks else ""
            container = inner.get_submodule(layout.blocks) if layout.blocks else inner
            missing = [prefix + n for n, b in container.named_children() if not hasattr(b, "branch_multiplier")]
            if missing:
                raise ValueError(
                    f"scheme {self.scheme!r} needs residual-branch multiplier {bm:g}, but blocks {missing[:4]} "
                    "have no float `branch_multiplier` attribute (compute `x + self.branch_multiplier * f(x)`)"
                )
        for b in layout.branch_sites:
            setattr(inner.get_submodule(b), "branch_multiplier", float(bm))
        for mname, (hd, base_hd) in layout.attention_sites.items():
            setattr(inner.get_submodule(mname), "attn_scale", float(attention_scale(self.scheme, hd, base_hd)))
        grown = [f"{n} (head_dim {hd:g}, {base_hd:g} at the base width)"
                 for n, (hd, base_hd) in layout.stock_attention.items() if hd != base_hd]
        if grown and self.scheme not in ("sp", "ntp"):
            warnings.warn(
                f"stock attention's head dimension grows with the width in {', '.join(grown[:4])}: scheme "
                f"{self.scheme!r} needs attention logits scaled by 1/head_dim, but nn.MultiheadAttention always "
                "uses 1/sqrt(head_dim) and has no scale to set, so the logits grow with width. Keep head_dim "
                "fixed and grow the number of heads, or use an attention module with an `attn_scale` site",
                HeadDimWarning, stacklevel=3,
            )

    # ------------------------------------------------------------------ optimizer groups
    def param_groups(
        self,
        model: nn.Module,
        *,
        lr: float,
        weight_decay: float = 0.0,
        eps: float = 1e-8,
        no_decay: Sequence[str] = ("bias", "gain", "scalar"),
        width: int | None = None,
        depth: int | None = None,
        base_model: nn.Module | None = None,
        roles: Mapping[str, str] | None = None,
        blocks: str | None = None,
    ) -> list[dict[str, Any]]:
        """Parameter groups for a stock ``torch.optim`` optimizer.

        Parameters
        ----------
        model : nn.Module
            Usually a model passed through :meth:`apply` (its recorded roles are used);
            otherwise roles are classified now (the keyword arguments as in ``apply``).
        lr, weight_decay, eps : float
            Base-shape learning rate, weight decay (see ``wd_mode``) and Adam epsilon.
            ``eps`` is only put in the groups for ``optimizer="adam"``.
        no_decay : sequence of str
            Roles that get no weight decay (default: biases, norm gains, scalars).

        Returns
        -------
        list of dict
            One group per distinct ``(lr, eps, weight_decay)`` (values equal to 12 significant
            digits share a group), in ``named_parameters()`` order, with keys
            ``params, lr, weight_decay, [eps], lr_scale, names, roles, lmech_optimizer``.
            ``lr_scale = group lr / lr`` supports schedules that set ``lr`` by hand.
            ``lmech_optimizer`` (``"adam"`` or ``"sgd"``) tags the update geometry: a global
            optimizer step pre-hook (``torch.optim.optimizer.register_optimizer_step_pre_hook``,
            installed on the first call; once per optimizer, then a dictionary lookup per step)
            refuses the groups at the first ``step()`` of a stock optimizer of the other family,
            see :func:`check_optimizer`. The optimizer is never wrapped or subclassed.

        Raises
        ------
        ValueError
            If the model gained parameters after :meth:`apply` (they have no role).
        """
        lr = check_real(lr, "lr", lo=0.0, lo_closed=False)
        weight_decay = check_real(weight_decay, "weight_decay", lo=0.0)
        eps = check_real(eps, "eps", lo=0.0)
        bad = [k for k in no_decay if k not in ROLE_KINDS + MOE_ROLE_KINDS]
        if isinstance(no_decay, str) or bad:
            fail("no_decay", f"a sequence of role names among {ROLE_KINDS + MOE_ROLE_KINDS}", no_decay)
        layout = self.layout(model, width=width, depth=depth, base_model=base_model, roles=roles, blocks=blocks)
        params = {clean_name(n): p for n, p in unwrap(model).named_parameters()}
        missing = [n for n in layout.roles if n not in params]
        if missing:
            raise ValueError(f"`model` has no parameters named {missing[:6]} (recorded by apply()); was it rebuilt?")
        late = [n for n in params if n not in layout.roles]
        if late:
            raise ValueError(
                f"`model` has parameters added after apply(), which have no role and would get no group: "
                f"{late[:8]}{' ...' if len(late) > 8 else ''}; add every parameter before apply(), or call "
                "apply(model, reinit=True) (re-initialises all) or attach(model) (keeps the weights) to record "
                "the roles again"
            )
        factors = self.factors(layout)
        _install_step_hook()
        groups: dict[tuple[float, float, float], dict[str, Any]] = {}
        for name, role in layout.roles.items():
            f = factors[name]
            g_lr = lr * f.lr
            if weight_decay == 0.0 or role.kind in no_decay:
                g_wd = 0.0
            elif self.wd_mode == "coupled":
                g_wd = weight_decay * f.wd
            else:
                g_wd = weight_decay / g_lr
            g_eps = eps * f.eps if self.optimizer == "adam" else 0.0
            key = (_merge_key(g_lr), _merge_key(g_eps), _merge_key(g_wd))
            if key not in groups:
                grp: dict[str, Any] = {"params": [], "lr": g_lr, "weight_decay": g_wd}
                if self.optimizer == "adam":
                    grp["eps"] = g_eps
                grp.update(lr_scale=f.lr, names=[], roles=[])
                grp[GROUP_TAG] = self.optimizer
                groups[key] = grp
            grp = groups[key]
            grp["params"].append(params[name])
            grp["names"].append(name)
            if role.kind not in grp["roles"]:
                grp["roles"].append(role.kind)
        return list(groups.values())

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Raise ValueError if ``optimizer`` is of the other family than ``self.optimizer`` or holds
        lmech groups built for the other family (see :func:`check_optimizer`); custom optimizers
        outside ``torch.optim`` pass."""
        family = optimizer_family(optimizer)
        if family is not None and family != self.optimizer:
            raise ValueError(
                f"optimizer: {type(optimizer).__qualname__} is {family!r}-like but {self!r} builds groups for "
                f"optimizer={self.optimizer!r}"
            )
        check_optimizer(optimizer)

    # ------------------------------------------------------------------ reporting
    def table(self, model: nn.Module, **kw: Any) -> str:
        """Role table of ``model`` with the learning-rate, epsilon and weight-decay factors."""
        layout = self.layout(model, **kw)
        factors = self.factors(layout)
        rows = [("parameter", "role", "block", "std x", "mult", "lr x", "eps x", "wd x")]
        for name, role in layout.roles.items():
            f = factors[name]
            mult = 1.0 if role.kind in MOE_ROLE_KINDS else width_factors(
                role.kind, self.scheme, self.optimizer, role.m_in, role.m_out, layout.m).multiplier
            mult_s = f"{mult:.4g}" + ("" if role.site or mult == 1.0 else " (folded)")
            rows.append((name, role.kind + (" tied" if role.tied else ""), "yes" if role.in_block else "",
                         f"{f.std:.4g}", mult_s, f"{f.lr:.4g}", f"{f.eps:.4g}", f"{f.wd:.4g}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        if layout.blocks is None:
            depth_s = "no residual blocks (depth rules unused)"
        else:
            depth_s = (f"depth {layout.depth} (m_L={layout.m_L:g}), branch multiplier "
                       f"{branch_multiplier(self.depth_exponent, layout.m_L):.4g}")
        head = f"{self!r}\nwidth {layout.width} (m={layout.m:g}), {depth_s}, roles by {layout.method}"
        lines = [head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        for site, (E, k, M) in layout.moe_sites.items():
            lines.append(f"{site}.load_bias: buffer (outside the optimizer), init N(0, {self.moe.load_bias_std:g}^2), "
                         f"b -= {self.moe.load_bias_lr:g} (load - {k}/{E}); experts {E}, active {k}, expert width {M} "
                         f"(r_M={self.expert_width_multiplier(layout, site):g})")
        return "\n".join(lines)
