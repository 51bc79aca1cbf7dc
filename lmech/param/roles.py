"""Role classification: which dimensions of every parameter grow with the model width.

Roles follow the "Tensor Programs V" taxonomy (matrix-like / vector-like / scalar-like),
refined by position: ``input`` (fan-in fixed, fan-out grows), ``hidden`` (both grow),
``readout`` (fan-in grows, fan-out fixed), ``bias`` (1-d, grows), ``gain`` (norm weight or
bias, grows), ``scalar`` (nothing grows). Flags: ``in_block`` (inside a residual block, gets
the depth rules) and ``tied`` (shared by an embedding and a readout).

Growing dimensions are found, in order of preference, by

1. comparing with a *probe*: the same architecture at another width, either passed as
   ``base_model`` or built on the meta device from ``type(model)(**model.config)`` for
   models exposing a ``config`` dict of constructor keywords with a ``width`` entry (all
   models in :mod:`lmech.models`);
2. the *chain rule* for ordinary models (e.g. an ``nn.Sequential`` of ``nn.Linear``): the
   fan-in of the first Linear/Conv layer, the fan-out of the last one and the number of
   rows of every ``nn.Embedding`` are fixed; every other dimension grows.

Users override roles with a mapping from parameter-name glob patterns to role names.
Metadata is keyed by parameter name (never stored on tensors), so it survives
``copy.deepcopy``, pickling, ``state_dict`` round trips and ``torch.compile``.
"""
from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from lmech._validation import check_choice, check_int, fail
from lmech.param.rules import ROLE_KINDS
from lmech.results import LmechWarning

__all__ = ["Role", "Layout", "classify", "unwrap", "clean_name", "HeadDimWarning"]


class HeadDimWarning(LmechWarning):
    """Stock attention (``nn.MultiheadAttention``) whose head dimension grows with the width.

    The muP family needs attention logits ``q.k / d_head`` once ``d_head`` grows, but the stock
    module always uses ``1/sqrt(d_head)`` and has no scale to set. Keep the head dimension fixed
    and grow the number of heads, or use an attention module with an ``attn_scale`` site.
    """


# parameters of ``nn.MultiheadAttention`` that act like a Linear weight / bias
_MHA_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
_MHA_BIASES = ("in_proj_bias", "bias_k", "bias_v")

_LINEAR_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM_TYPES = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


@dataclass(frozen=True)
class Role:
    """How one parameter tensor scales.

    Attributes
    ----------
    kind : str
        One of ``input, hidden, readout, bias, gain, scalar``, or for the parameters of a
        mixture-of-experts layer (a module with ``lmech_moe = True``) ``router``,
        ``expert_up``, ``expert_down`` (their expert-width multiplier comes from the
        parameterization, see :class:`lmech.param.MoERules`).
    fan_in : int
        Actual fan-in used for the initial std (1 for embeddings and vectors).
    m_in, m_out : float
        Width multipliers of the fan-in and fan-out dimensions (1 for fixed ones).
    in_block : bool
        Lives inside a residual block (gets the depth rules).
    tied : bool
        Shared by an embedding and a readout (takes the ``input`` rules; the readout use
        gets its multiplier at its forward site).
    init : str
        ``normal`` (N(0, std^2)), ``zeros``, ``ones`` or ``keep`` (left as it is).
    site : str or None
        Name of the module holding this weight's ``input_multiplier`` site; None when the
        multiplier is folded into init and learning rate.
    readout_site : str or None
        For a tied weight: the module that uses it as a readout (must have a site).
    query : bool
        Weight of an attention query projection (zero-initialised on request).
    """

    kind: str
    fan_in: int = 1
    m_in: float = 1.0
    m_out: float = 1.0
    in_block: bool = False
    tied: bool = False
    init: str = "normal"
    site: str | None = None
    readout_site: str | None = None
    query: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Role":
        return cls(**dict(d))


@dataclass(frozen=True)
class Layout:
    """Everything the parameterization decided about one model (plain, JSON-serialisable data).

    ``roles`` maps every parameter name (as in ``model.named_parameters()``, tied
    parameters once) to its :class:`Role`. ``branch_sites`` lists the residual blocks
    (modules with a ``branch_multiplier``), ``attention_sites`` maps attention modules to
    ``(head_dim, base_head_dim)``. ``moe_sites`` maps mixture-of-experts layers (modules
    with ``lmech_moe = True``) to ``(n_experts, n_active, expert_width)``.
    """

    width: int
    depth: int
    m: float
    m_L: float
    roles: dict[str, Role]
    blocks: str | None = None
    branch_sites: tuple[str, ...] = ()
    attention_sites: dict[str, tuple[float, float]] = field(default_factory=dict)
    method: str = "chain"
    stock_attention: dict[str, tuple[float, float]] = field(default_factory=dict)
    moe_sites: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "depth": self.depth,
            "m": self.m,
            "m_L": self.m_L,
            "roles": {k: r.to_dict() for k, r in self.roles.items()},
            "blocks": self.blocks,
            "branch_sites": list(self.branch_sites),
            "attention_sites": {k: list(v) for k, v in self.attention_sites.items()},
            "method": self.method,
            "stock_attention": {k: list(v) for k, v in self.stock_attention.items()},
            "moe_sites": {k: list(v) for k, v in self.moe_sites.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Layout":
        return cls(
            width=int(d["width"]),
            depth=int(d["depth"]),
            m=float(d["m"]),
            m_L=float(d["m_L"]),
            roles={k: Role.from_dict(r) for k, r in d["roles"].items()},
            blocks=d.get("blocks"),
            branch_sites=tuple(d.get("branch_sites", ())),
            attention_sites={k: (float(v[0]), float(v[1])) for k, v in d.get("attention_sites", {}).items()},
            method=d.get("method", "chain"),
            stock_attention={k: (float(v[0]), float(v[1])) for k, v in d.get("stock_attention", {}).items()},
            moe_sites={k: (int(v[0]), int(v[1]), int(v[2])) for k, v in d.get("moe_sites", {}).items()},
        )

    def table(self) -> str:
        """The role table as aligned text (one line per parameter)."""
        rows = [("parameter", "role", "shape-mult in/out", "block", "init", "site")]
        for name, r in self.roles.items():
            kind = r.kind + (" (tied)" if r.tied else "") + (" (query)" if r.query else "")
            rows.append((name, kind, f"{r.m_in:g}/{r.m_out:g}", "yes" if r.in_block else "",
                         r.init, r.site or ("fold" if r.kind in ("hidden", "readout") else "")))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [f"width {self.width} (m={self.m:g}), depth {self.depth} (m_L={self.m_L:g}), roles by {self.method}"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        return "\n".join(lines)


# --------------------------------------------------------------------------- helpers
_WRAPPER_TOKENS = ("_orig_mod.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def unwrap(model: nn.Module) -> nn.Module:
    """Strip ``torch.compile`` / DDP / DataParallel / FSDP wrappers (parameters are shared)."""
    while True:
        for attr in ("_orig_mod", "_fsdp_wrapped_module"):
            inner = getattr(model, attr, None)
            if isinstance(inner, nn.Module):
                model = inner
                break
        else:
            if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
                model = model.module
                continue
            return model


def clean_name(name: str) -> str:
    """Parameter name without wrapper components (``_orig_mod.``, ``_fsdp_wrapped_module.``, ...)."""
    for token in _WRAPPER_TOKENS:
        name = name.replace(token, "")
    return name


def _param_uses(model: nn.Module) -> tuple[dict[int, str], dict[int, list[tuple[str, nn.Module, str]]], dict[int, torch.Tensor]]:
    """Canonical name of every parameter and every (module name, module, attr) using it."""
    canonical: dict[int, str] = {}
    uses: dict[int, list[tuple[str, nn.Module, str]]] = {}
    tensors: dict[int, torch.Tensor] = {}
    for name, p in model.named_parameters():
        canonical[id(p)] = name
        tensors[id(p)] = p
    for mname, mod in model.named_modules(remove_duplicate=False):
        for pname, p in mod._parameters.items():
            if p is None or id(p) not in canonical:
                continue
            entry = (mname, mod, pname)
            lst = uses.setdefault(id(p), [])
            if all(e[1] is not mod or e[2] != pname for e in lst):
                lst.append(entry)
    return canonical, uses, tensors


def _probe(model: nn.Module, width: int) -> nn.Module | None:
    config = getattr(model, "config", None)
    if not isinstance(config, Mapping) or "width" not in config:
        return None
    try:
        with torch.device("meta"):
            return type(model)(**{**dict(config), "width": width})
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"cannot build {type(model).__name__} at width {width} to find its growing dimensions ({exc}); "
            "pass `base_model=` (any width other than the model's) or a `base_width` the model accepts"
        ) from None


def _probe_shapes(probe: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in probe.named_parameters()}


def _module_fan_in(mod: nn.Module, p: torch.Tensor) -> int:
    if isinstance(mod, nn.Embedding):
        return 1
    if p.ndim >= 2:
        return int(math.prod(p.shape[1:]))
    return 1


def _infer_width(model: nn.Module, width: int | None) -> int | None:
    if width is not None:
        return check_int(width, "width", lo=1)
    w = getattr(model, "width", None)
    if isinstance(w, int) and not isinstance(w, bool):
        return w
    return None


# --------------------------------------------------------------------------- classify
def classify(
    model: nn.Module,
    *,
    base_width: int,
    base_depth: int,
    width: int | None = None,
    depth: int | None = None,
    base_model: nn.Module | None = None,
    roles: Mapping[str, str] | None = None,
    blocks: str | None = None,
) -> Layout:
    """Classify every parameter of ``model`` and find its multiplier sites.

    Parameters
    ----------
    model : nn.Module
        The model at its target shape (compile/DDP wrappers are stripped).
    base_width, base_depth : int
        The base shape the hyperparameters were tuned at.
    width, depth : int, optional
        Target width / number of residual blocks; default from ``model.width`` /
        ``model.depth``, the probe comparison, or the layer chain (width) and the length of
        the block container (depth).
    base_model : nn.Module, optional
        The same architecture at another width (e.g. the base model, possibly on the meta
        device); growing dimensions are those whose size differs.
    roles : mapping of str to str, optional
        Overrides: parameter-name glob pattern -> role name (``input``, ``hidden``,
        ``readout``, ``bias``, ``gain``, ``scalar``). The first matching pattern wins.
    blocks : str, optional
        Name of the container (``nn.ModuleList``/``nn.Sequential``) whose children are the
        residual blocks; default ``model.lmech_blocks`` if defined. Parameters under it get
        the depth rules; each block should define a float ``branch_multiplier``.

    Raises
    ------
    ValueError
        On parameters with no role (listing their names), sizes that are not positive,
        ``base_width > width`` or ``base_depth > depth``, or inconsistent growth.
    """
    model = unwrap(model)
    overrides = dict(roles or {})
    kind: str | None
    for pat, kind in overrides.items():
        if not isinstance(pat, str):
            fail("roles", "a mapping from name patterns (str) to role names", roles, TypeError)
        check_choice(kind, f"roles[{pat!r}]", ROLE_KINDS)
    canonical, uses, tensors = _param_uses(model)
    if not canonical:
        fail("model", "a module with parameters", type(model).__name__)

    # ---- growth of every dimension
    width_arg = _infer_width(model, width)
    method = "chain"
    grow: dict[str, tuple[bool, ...]] = {}
    ratio_seen: set[float] = set()
    probe = None
    probe_width = None
    if base_model is not None:
        if not isinstance(base_model, nn.Module):
            fail("base_model", "an nn.Module", base_model, TypeError)
        probe = unwrap(base_model)
        probe_width = _infer_width(probe, None)
    elif getattr(model, "config", None) is not None and width_arg is not None:
        probe_width = base_width if base_width != width_arg else 2 * width_arg
        probe = _probe(model, probe_width)
    if probe is not None:
        shapes = _probe_shapes(probe)
        missing = [n for n in canonical.values() if n not in shapes]
        if missing:
            raise ValueError(
                f"`base_model` must have the same parameter names as `model`; missing in base_model: {missing[:8]}"
            )
        for pid, name in canonical.items():
            t, b = tuple(tensors[pid].shape), shapes[name]
            if len(t) != len(b):
                raise ValueError(f"parameter {name!r} has shape {t} in `model` but {b} in `base_model`")
            grow[name] = tuple(x != y for x, y in zip(t, b))
            ratio_seen.update(x / y for x, y in zip(t, b) if x != y)
        if any(any(g) for g in grow.values()):
            method = "probe"
        else:
            grow = {}  # same shapes (width == base): fall back to the chain rule for the roles

    if not grow:
        grow = _chain_growth(model, canonical, uses, tensors)

    # ---- width and width multiplier
    if width_arg is None:
        width_arg = _chain_width(model, canonical, uses, tensors, grow)
        if width_arg is None:
            raise ValueError("cannot infer the model width; pass `width=`")
    width_v = width_arg
    if width_v < base_width:
        fail("base_width", f"<= the model width {width_v}", base_width)
    m = width_v / base_width
    if method == "probe" and probe_width is not None:
        expected = width_v / probe_width
        bad = [r for r in ratio_seen if not math.isclose(r, expected, rel_tol=1e-9)]
        if bad:
            raise ValueError(
                f"every growing dimension must scale like the width (ratio {expected:g} against the probe); "
                f"found ratios {sorted(bad)[:4]}; pass `roles=` overrides or a `base_model` at the base width"
            )
    elif method == "probe" and probe_width is None:
        if len(ratio_seen) != 1:
            raise ValueError(f"growing dimensions scale by different ratios {sorted(ratio_seen)}; pass `width=`")
        if width is None and not isinstance(getattr(model, "width", None), int):
            m = next(iter(ratio_seen))
            width_v = int(round(base_width * m))

    # ---- residual blocks and depth
    blocks_name = blocks if blocks is not None else getattr(model, "lmech_blocks", None)
    block_names: list[str] = []
    if blocks_name is not None:
        if not isinstance(blocks_name, str):
            fail("blocks", "the name of a sub-module (str)", blocks_name, TypeError)
        try:
            container = model.get_submodule(blocks_name) if blocks_name else model
        except AttributeError:
            fail("blocks", "the name of a sub-module of `model`", blocks_name)
        prefix = f"{blocks_name}." if blocks_name else ""
        block_names = [prefix + n for n, _ in container.named_children()]
    if depth is not None:
        depth_v = check_int(depth, "depth", lo=1)
    elif isinstance(getattr(model, "depth", None), int):
        depth_v = int(getattr(model, "depth"))
    elif block_names:
        depth_v = len(block_names)
    else:
        depth_v = base_depth
    if depth_v < base_depth:
        fail("base_depth", f"<= the model depth {depth_v}", base_depth)
    m_L = depth_v / base_depth

    # ---- roles
    result: dict[str, Role] = {}
    unassigned: list[str] = []
    for pid, name in canonical.items():
        p = tensors[pid]
        use = uses[pid]
        mname, mod, pname = use[0]
        g = grow.get(name, tuple(False for _ in p.shape))
        in_block = any(name.startswith(b + ".") for b in block_names)
        query = bool(getattr(mod, "lmech_query", False)) and pname == "weight"
        kind = None
        for pat, k in overrides.items():
            if fnmatch.fnmatchcase(name, pat):
                kind = k
                break
        role = _structural_role(mod, pname, p, g, m)
        if kind is not None:
            role = _forced_role(kind, role, mod, pname, p, m)
        if role is None:
            unassigned.append(f"{name} {tuple(p.shape)} in {type(mod).__name__}")
            continue
        site = mname if pname == "weight" and _has_input_site(mod) else None
        tied = False
        readout_site = None
        if len(use) > 1:
            emb = [u for u in use if isinstance(u[1], nn.Embedding)]
            lin = [u for u in use if isinstance(u[1], nn.Linear)]
            if emb and lin:
                tied = True
                readout_site = lin[0][0] if _has_input_site(lin[0][1]) else None
                role = Role(kind="input" if role.kind != "scalar" else "scalar", fan_in=1, m_in=1.0,
                            m_out=role.m_out if role.kind != "readout" else m, init=role.init)
                site = None
        result[name] = Role(
            kind=role.kind, fan_in=role.fan_in, m_in=role.m_in, m_out=role.m_out, in_block=in_block,
            tied=tied, init=role.init, site=site, readout_site=readout_site, query=query,
        )
    if unassigned:
        raise ValueError(
            "parameters with no role (pass `roles={pattern: role}` with a role among "
            f"{', '.join(ROLE_KINDS)}): " + "; ".join(unassigned)
        )
    if method == "chain" and width_v != base_width:
        _check_chain_roles(result, canonical, uses, tensors, overrides, width_v)

    # ---- sites
    branch_sites = tuple(b for b in block_names if hasattr(model.get_submodule(b), "branch_multiplier"))
    attention_sites: dict[str, tuple[float, float]] = {}
    probe_mods = dict(probe.named_modules()) if probe is not None else {}
    for mname, mod in model.named_modules():
        if hasattr(mod, "attn_scale") and hasattr(mod, "head_dim"):
            hd = float(mod.head_dim)
            base_hd = getattr(mod, "base_head_dim", None)
            pm = probe_mods.get(mname)
            if base_hd is None and pm is not None and method == "probe":
                phd = float(pm.head_dim)
                # head_dim scales like the width, or not at all
                base_hd = hd if phd == hd else hd / m
            attention_sites[mname] = (hd, float(base_hd) if base_hd is not None else hd)
    # stock attention has a fixed 1/sqrt(head_dim) logit scale: record how its head dim grows
    stock_attention: dict[str, tuple[float, float]] = {}
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.MultiheadAttention):
            hd = float(mod.head_dim)
            pm = probe_mods.get(mname)
            if method == "probe" and isinstance(pm, nn.MultiheadAttention):
                base_hd = hd if float(pm.head_dim) == hd else hd / m
            else:
                base_hd = hd  # unknown without a probe: assume a fixed head dimension
            stock_attention[mname] = (hd, base_hd)
    moe_sites = {mname: (int(mod.n_experts), int(mod.n_active), int(mod.expert_width))
                 for mname, mod in model.named_modules() if getattr(mod, "lmech_moe", False)}
    return Layout(
        width=width_v, depth=depth_v, m=m, m_L=m_L, roles=result, blocks=blocks_name,
        branch_sites=branch_sites, attention_sites=attention_sites, method=method,
        stock_attention=stock_attention, moe_sites=moe_sites,
    )


def _check_chain_roles(result, canonical, uses, tensors, overrides, width: int) -> None:
    """Refuse chain-rule roles that contradict the width (modules registered out of forward order).

    The chain rule trusts registration order: the first Linear/Conv layer is taken as the one
    fed by the data, the last one as the readout. Two shape patterns show that the order is not
    the forward order: an ``input`` layer that reads a width-sized vector but does not produce
    one (it is really a head), and a ``readout`` that maps the width to the width (it is really
    a hidden layer).
    """
    bad: list[str] = []
    for pid, name in canonical.items():
        role = result.get(name)
        mname, mod, pname = uses[pid][0]
        if role is None or pname != "weight" or not isinstance(mod, _LINEAR_TYPES):
            continue
        if any(fnmatch.fnmatchcase(name, pat) for pat in overrides):
            continue
        shape = tuple(tensors[pid].shape)
        fan_out, fan_in_ch = shape[0], shape[1]
        if role.kind == "input" and fan_in_ch == width and fan_out != width:
            bad.append(f"{name} {shape} classified 'input' but its input dimension is the width {width} "
                       "(is it the output head?)")
        elif role.kind == "readout" and fan_out == width:
            bad.append(f"{name} {shape} classified 'readout' but its output dimension is the width {width} "
                       "(is it a hidden layer?)")
    if bad:
        raise ValueError(
            "roles inferred from module registration order contradict the width (the first registered "
            "Linear/Conv layer is taken as the input layer and the last as the readout): " + "; ".join(bad)
            + ". Register modules in forward order, or pass `roles={pattern: role}` overrides or "
            "`base_model=` (the same model at another width)"
        )


def _has_input_site(mod: nn.Module) -> bool:
    return isinstance(getattr(mod, "input_multiplier", None), float)


def _chain_growth(model, canonical, uses, tensors) -> dict[str, tuple[bool, ...]]:
    """Chain rule: the first layer's fan-in and the last layer's fan-out are fixed."""
    layers = [mod for mod in model.modules() if isinstance(mod, _LINEAR_TYPES + (nn.Embedding,))]
    linears = [mod for mod in layers if isinstance(mod, _LINEAR_TYPES)]
    # an embedding in front fixes its own rows only; otherwise the first layer's fan-in is fixed
    first = layers[0] if layers and isinstance(layers[0], _LINEAR_TYPES) else None
    last = linears[-1] if linears else None
    grow: dict[str, tuple[bool, ...]] = {}
    for pid, name in canonical.items():
        p = tensors[pid]
        mname, mod, pname = uses[pid][0]
        if isinstance(mod, nn.Embedding) and pname == "weight":
            g: tuple[bool, ...] = (False, True)
            # tied with the last layer: the vocabulary is the last layer's fan-out (fixed) anyway
        elif isinstance(mod, _LINEAR_TYPES):
            out_g = mod is not last
            in_g = mod is not first
            if pname == "weight":
                g = (out_g, in_g) + (False,) * (p.ndim - 2)
            else:
                g = (out_g,)
        elif isinstance(mod, _NORM_TYPES):
            g = (True,) * p.ndim
        else:
            g = (True,) * p.ndim  # only used when the user assigns a role
        grow[name] = g
    return grow


def _chain_width(model, canonical, uses, tensors, grow) -> int | None:
    """Width = the first growing fan-out among Linear/Conv/Embedding weights."""
    for pid, name in canonical.items():
        mname, mod, pname = uses[pid][0]
        if pname != "weight" or not isinstance(mod, _LINEAR_TYPES + (nn.Embedding,)):
            continue
        g = grow[name]
        p = tensors[pid]
        if isinstance(mod, nn.Embedding):
            if g[1]:
                return int(p.shape[1])
        elif g[0]:
            return int(p.shape[0])
    return None


# parameter name in a mixture-of-experts module -> (role, index of its model-width dimension)
_MOE_PARAMS = {"router": ("router", 1), "up": ("expert_up", 2), "down": ("expert_down", 1)}


def _structural_role(mod: nn.Module, pname: str, p: torch.Tensor, g: tuple[bool, ...], m: float) -> Role | None:
    if getattr(mod, "lmech_moe", False) and pname in _MOE_PARAMS:
        # the expert width's multiplier is not known here: the parameterization takes it from
        # the layer's expert_width and its base_expert_width (down keeps its actual fan-in)
        kind, d_axis = _MOE_PARAMS[pname]
        r_D = m if g[d_axis] else 1.0
        if kind == "expert_down":
            return Role(kind, fan_in=int(p.shape[2]), m_in=1.0, m_out=r_D)
        return Role(kind, fan_in=int(p.shape[-1]), m_in=r_D, m_out=1.0)
    if isinstance(mod, nn.MultiheadAttention):
        # stock attention: the packed/separate projections are Linear weights (out, in); the
        # growing dimensions (probe, or both by default) decide the role as for nn.Linear
        if pname in _MHA_WEIGHTS and p.ndim == 2:
            kind = {(True, False): "input", (True, True): "hidden", (False, True): "readout",
                    (False, False): "scalar"}[(g[0], g[1])]
            return Role(kind, fan_in=int(p.shape[1]), m_in=m if g[1] else 1.0, m_out=m if g[0] else 1.0)
        if pname in _MHA_BIASES:
            init = "zeros"
            return Role("bias", m_out=m, init=init) if g and g[-1] else Role("scalar", init=init)
        return None
    if isinstance(mod, nn.Embedding) and pname == "weight":
        return Role("input", fan_in=1, m_out=m) if g[1] else Role("scalar", fan_in=1)
    if isinstance(mod, _LINEAR_TYPES):
        if pname == "weight":
            out_g, in_g = g[0], g[1]
            fan_in = _module_fan_in(mod, p)
            kind = {(True, False): "input", (True, True): "hidden", (False, True): "readout", (False, False): "scalar"}[
                (out_g, in_g)
            ]
            return Role(kind, fan_in=fan_in, m_in=m if in_g else 1.0, m_out=m if out_g else 1.0)
        if pname == "bias":
            return Role("bias", m_out=m, init="zeros") if g[0] else Role("scalar", init="zeros")
        return None
    if isinstance(mod, _NORM_TYPES):
        init = "ones" if pname == "weight" else "zeros"
        return Role("gain", m_out=m, init=init) if all(g) else Role("scalar", init=init)
    return None


def _forced_role(kind: str, role: Role | None, mod: nn.Module, pname: str, p: torch.Tensor, m: float) -> Role:
    """A user override: keep what is known about the tensor, force its kind."""
    fan_in = role.fan_in if role is not None else (int(math.prod(p.shape[1:])) if p.ndim >= 2 else 1)
    if role is not None:
        init = role.init
    elif kind in ("input", "hidden", "readout"):
        init = "normal"
    else:
        init = "keep"
    m_in = m if kind in ("hidden", "readout") else 1.0
    m_out = m if kind in ("input", "hidden", "bias", "gain") else 1.0
    return Role(kind, fan_in=fan_in, m_in=m_in, m_out=m_out, init=init)
