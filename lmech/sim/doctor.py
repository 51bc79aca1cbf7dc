"""Transfer doctor: does a user's model follow a width parameterization, layer by layer?

The coordinate check of "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer" asks whether each layer's activations and their change stay of
order one as the width grows. When a model fails to transfer, users need to know *which*
parameter breaks the rule and why. :func:`transfer_doctor` measures, for every parameter
``W`` of a model built by a factory ``make_model(width)`` at several widths:

* the **update effect** ``u_W = RMS(f(x_T; W_T) - f(x_T; W_0))``: how much the parameter's
  own update, after ``steps`` optimizer steps on one fixed batch, changes the output of the
  module that owns it (the other parameters and the input ``x_T`` held at their values at
  step ``T``). Under muP every parameter's ``u_W`` is width-independent; a hidden weight
  with one learning rate for all widths (SP) has ``u_W ∝ width`` (Adam), the classic way
  transfer breaks;
* the **activation size** ``RMS(f(x_0; θ_0))`` at initialisation and the **activation
  change** ``RMS(f(x_T; θ_T) - f(x_0; θ_0))`` of each module, and, for stock
  ``nn.MultiheadAttention``, the change of its attention logits (``q·k / sqrt(d_head)``,
  which grows like ``sqrt(d_head)`` when the head dimension grows with width: muP needs
  ``1 / d_head``);
* the gradient size against Adam's ``eps`` (an ``eps`` comparable to the gradients damps
  the update at large width: a coordinate check on a short run passes, transfer fails).

Each quantity's log-log slope against width is fitted; a parameter or module whose slope
exceeds ``tolerance`` in size breaks the scheme. The same measurement under SP is the
negative control: if SP does not break either, the grid or learning rate is too small to
tell (verdict ``inconclusive``).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from lmech._validation import check_choice, check_int, check_real, fail
from lmech.param.parameterization import Parameterization
from lmech.param.roles import unwrap
from lmech.param.rules import SCHEMES

__all__ = ["transfer_doctor", "DoctorResult", "Finding", "example_batch"]


@dataclass
class Finding:
    """One thing that breaks (or threatens) the scheme: where, what was measured, likely cause."""

    where: str
    quantity: str
    slope: float
    cause: str
    severity: str = "breaks"  # or "warning"

    def line(self) -> str:
        slope = "" if not math.isfinite(self.slope) else f" (slope {self.slope:+.2f} vs width)"
        return f"[{self.severity}] {self.where}: {self.quantity}{slope}. {self.cause}"


@dataclass
class DoctorResult:
    """What :func:`transfer_doctor` measured and concluded.

    ``rows``: one dict per (scheme, parameter or module, quantity) with the seed-mean value
    at each width and the fitted slope; ``findings``: what breaks the scheme under test;
    ``control_max_slope``: the largest update-effect slope of the SP control (it must reach
    ``separation`` for the check to be conclusive); ``verdict``: ``holds`` / ``breaks`` /
    ``inconclusive``.
    """

    scheme: str
    control: str | None
    widths: list[int]
    steps: int
    seeds: int
    lr: float
    optimizer: str
    tolerance: float
    separation: float
    roles_table: str
    rows: list[dict[str, Any]]
    findings: list[Finding]
    warnings: list[Finding]
    control_max_slope: float | None
    verdict: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def slopes(self, scheme: str, quantity: str) -> dict[str, float]:
        """``{name: slope}`` of one quantity (``update``, ``act_init``, ``act_change``, ``logit_change``)."""
        return {r["name"]: r["slope"] for r in self.rows if r["scheme"] == scheme and r["quantity"] == quantity}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["findings"] = [dataclasses.asdict(f) for f in self.findings]
        d["warnings"] = [dataclasses.asdict(f) for f in self.warnings]
        return _finite(d)

    def table(self, scheme: str | None = None) -> str:
        """Per-parameter update-effect and per-module activation slopes of one scheme."""
        scheme = scheme or self.scheme
        rows = [r for r in self.rows if r["scheme"] == scheme]
        head = f"{'name':<44} {'quantity':<13} {'role':<9} " + " ".join(f"{w:>9}" for w in self.widths) + "    slope"
        lines = [f"== {scheme}", head]
        for r in rows:
            vals = " ".join(f"{v:9.3g}" for v in r["values"])
            flag = "  <- breaks" if abs(r["slope"]) > self.tolerance and r["quantity"] != "act_init" else ""
            lines.append(f"{r['name'][:44]:<44} {r['quantity']:<13} {r.get('role', ''):<9} {vals} {r['slope']:+8.2f}{flag}")
        return "\n".join(lines)

    def summary(self) -> str:
        head = {"holds": f"{self.scheme} HOLDS on this model over widths {self.widths}",
                "breaks": f"{self.scheme} BREAKS on this model over widths {self.widths}",
                "inconclusive": f"INCONCLUSIVE for {self.scheme} over widths {self.widths}"}[self.verdict]
        lines = [head]
        lines += ["  " + f.line() for f in self.findings]
        lines += ["  " + f.line() for f in self.warnings]
        if self.control is not None and self.control_max_slope is not None:
            lines.append(f"  negative control {self.control}: largest update-effect slope {self.control_max_slope:+.2f} "
                         f"(must reach {self.separation:g} to show the check can see a break)")
        lines += ["  note: " + n for n in self.notes]
        return "\n".join(lines)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _slope(widths: Sequence[int], values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        return math.nan
    return float(np.polyfit(np.log2(np.asarray(widths, dtype=float)), np.log2(v), 1)[0])


def _rms(t: torch.Tensor) -> float:
    return float(t.detach().double().pow(2).mean().sqrt())


def _first_tensor(out: Any) -> torch.Tensor | None:
    if torch.is_tensor(out):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if torch.is_tensor(o):
                return o
    return None


def example_batch(model: nn.Module, batch_size: int = 16, seq_len: int = 4, seed: int = 0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch that fits ``model``'s first layer: Gaussian inputs for an ``nn.Linear``
    (or ``nn.Conv*``) first layer, token ids ``(batch, seq_len)`` for an ``nn.Embedding``;
    targets are class indices over the output's last dimension (regression outputs of size
    1 get Gaussian targets). Raises ValueError when the first layer is neither."""
    g = torch.Generator().manual_seed(seed)
    first = next((m for m in unwrap(model).modules()
                  if isinstance(m, (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d))), None)
    if isinstance(first, nn.Embedding):
        x = torch.randint(0, first.num_embeddings, (batch_size, seq_len), generator=g)
    elif isinstance(first, nn.Linear):
        x = torch.randn(batch_size, first.in_features, generator=g)
    else:
        fail("model", "a model whose first layer is nn.Linear or nn.Embedding (or pass batch=(x, y))",
             type(first).__name__ if first is not None else type(model).__name__)
    with torch.no_grad():
        out = model(x)
    out = _first_tensor(out)
    if out is None:
        fail("model", "a model returning a tensor (or pass batch= and loss_fn=)", type(model).__name__, TypeError)
    if out.shape[-1] == 1:
        y = torch.randn(out.shape, generator=g)
    else:
        y = torch.randint(0, out.shape[-1], out.shape[:-1], generator=g)
    return x, y


def _default_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.dtype.is_floating_point:
        return F.mse_loss(out, y)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


class _Capture:
    """Forward hooks on every module that owns parameters: last inputs and outputs."""

    def __init__(self, model: nn.Module) -> None:
        self.inputs: dict[str, tuple[tuple, dict]] = {}
        self.outputs: dict[str, torch.Tensor] = {}
        self.modules: dict[str, nn.Module] = {}
        self.handles: list[Any] = []
        for name, mod in model.named_modules():
            if any(True for _ in mod.parameters(recurse=False)):
                self.modules[name] = mod
                self.handles.append(mod.register_forward_hook(self._hook(name), with_kwargs=True))

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
            t = _first_tensor(out)
            if t is None:
                return
            self.inputs[name] = (tuple(a.detach() if torch.is_tensor(a) else a for a in args),
                                 {k: v.detach() if torch.is_tensor(v) else v for k, v in kwargs.items()})
            self.outputs[name] = t.detach().clone()
        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _mha_logits(mod: nn.MultiheadAttention, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """Attention logits ``q k^T / sqrt(d_head)`` of a stock attention module's captured call."""
    q_in = args[0] if args else kwargs.get("query")
    k_in = args[1] if len(args) > 1 else kwargs.get("key")
    if not (torch.is_tensor(q_in) and torch.is_tensor(k_in)) or mod.in_proj_weight is None:
        return None
    if not mod.batch_first:
        q_in, k_in = q_in.transpose(0, 1), k_in.transpose(0, 1)
    E, H = mod.embed_dim, mod.num_heads
    w_q, w_k = mod.in_proj_weight[:E], mod.in_proj_weight[E:2 * E]
    b_q = mod.in_proj_bias[:E] if mod.in_proj_bias is not None else None
    b_k = mod.in_proj_bias[E:2 * E] if mod.in_proj_bias is not None else None
    q = F.linear(q_in, w_q, b_q)
    k = F.linear(k_in, w_k, b_k)
    d = E // H
    q = q.unflatten(-1, (H, d)).transpose(-3, -2)
    k = k.unflatten(-1, (H, d)).transpose(-3, -2)
    return (q @ k.transpose(-1, -2)) / math.sqrt(d)


def _measure(make: Callable[[], nn.Module], base: nn.Module, param: Parameterization, width: int, batch: tuple,
             loss_fn: Callable, lr: float, eps: float, steps: int, seed: int, roles: Mapping[str, str] | None
             ) -> tuple[dict[tuple[str, str], float], dict[str, str], dict[str, tuple[float, float]]]:
    """One model at one width and seed: {(name, quantity): value}, roles, {param: (grad rms, eps)}."""
    import warnings

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the doctor reports what the warnings say, measured
        param.apply(model, base_model=base, roles=roles, width=width, generator=gen)
    groups = param.param_groups(model, lr=lr, eps=eps)
    role_of = {n: r for g in groups for n, r in zip(g["names"], _roles_of(param, model, g["names"]))}
    eps_of = {n: g.get("eps", 0.0) for g in groups for n in g["names"]}
    opt = torch.optim.Adam(groups) if param.optimizer == "adam" else torch.optim.SGD(groups, lr=lr)
    inner = unwrap(model)
    cap = _Capture(inner)
    x, y = batch
    values: dict[tuple[str, str], float] = {}
    grads: dict[str, tuple[float, float]] = {}
    p0 = {n: p.detach().clone() for n, p in inner.named_parameters()}
    try:
        out0: dict[str, torch.Tensor] = {}
        logits0: dict[str, torch.Tensor] = {}
        for t in range(steps + 1):
            if t < steps:
                loss = loss_fn(_first_tensor(model(x)), y)
            else:
                with torch.no_grad():
                    model(x)
            if t == 0:
                out0 = dict(cap.outputs)
                with torch.no_grad():
                    for name, mod in cap.modules.items():
                        if isinstance(mod, nn.MultiheadAttention) and name in cap.inputs:
                            lg = _mha_logits(mod, *cap.inputs[name])
                            if lg is not None:
                                logits0[name] = lg
            if t < steps:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if t == 0:
                    for n, p in inner.named_parameters():
                        if p.grad is not None:
                            grads[n] = (float(p.grad.abs().mean()), float(eps_of.get(n, 0.0)))
                opt.step()
        with torch.no_grad():
            for name, mod in cap.modules.items():
                if name not in cap.outputs or name not in out0:
                    continue
                values[(name, "act_init")] = _rms(out0[name])
                if cap.outputs[name].shape == out0[name].shape:
                    values[(name, "act_change")] = _rms(cap.outputs[name] - out0[name])
                args, kwargs = cap.inputs[name]
                now = cap.outputs[name]
                for pname, p in mod.named_parameters(recurse=False):
                    full = f"{name}.{pname}" if name else pname
                    if not p.requires_grad:
                        continue
                    swapped = _first_tensor(functional_call(mod, {pname: p0[full]}, args, kwargs, strict=False))
                    if swapped is not None and swapped.shape == now.shape:
                        values[(full, "update")] = _rms(now - swapped)
                if name in logits0:
                    lg = _mha_logits(mod, args, kwargs)
                    if lg is not None:
                        values[(name, "logit_change")] = _rms(lg - logits0[name])
    finally:
        cap.remove()
    return values, role_of, grads


def _roles_of(param: Parameterization, model: nn.Module, names: Sequence[str]) -> list[str]:
    layout = param.layout(model)
    return [layout.roles[n].kind for n in names]


def _cause(name: str, role: str, quantity: str, slope: float, scheme: str, grown_heads: bool) -> str:
    if quantity == "logit_change":
        if grown_heads:
            return ("the head dimension grows with width and stock nn.MultiheadAttention scales logits by "
                    "1/sqrt(head_dim); muP needs 1/head_dim. Keep head_dim fixed and grow the number of heads, "
                    "or use an attention module with an `attn_scale` site")
        return "attention logits change with width: check the query/key roles and the attention scale"
    if quantity == "act_init":
        return (f"the activation at initialisation scales with width: its init std is not width-scaled as role "
                f"{role!r} assumes (did something re-initialise it after apply()?)")
    if quantity == "act_change":
        return "this module's output change grows with width (see the update effects of its parameters)"
    if slope > 0:
        if role in ("input", "bias", "gain", "scalar", "vector"):
            return (f"classified {role!r} (fan-in fixed), yet its update effect grows with width: its fan-in "
                    f"probably grows. Override with roles={{'{name}': 'hidden'}} (or 'readout')")
        return (f"role {role!r}: its update is not scaled down enough with width. Is the optimizer built from "
                f"Parameterization.param_groups (one LR for every parameter is SP)? Is this the readout "
                f"(roles={{'{name}': 'readout'}})?")
    if role in ("hidden", "readout"):
        return (f"classified {role!r} (fan-in grows), yet its update effect shrinks with width: its fan-in "
                f"probably does not grow. Override with roles={{'{name}': 'input'}} (or 'bias' for a vector)")
    return "its update shrinks with width: learning stalls in this parameter at large width"


def transfer_doctor(
    make_model: Callable[..., nn.Module],
    widths: Sequence[int] = (64, 128, 256, 512),
    scheme: str = "mup",
    *,
    steps: int = 5,
    seeds: int = 3,
    seed: int = 0,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    lr: float = 1e-2,
    eps: float = 1e-8,
    optimizer: str = "adam",
    roles: Mapping[str, str] | None = None,
    control: str | None = "sp",
    tolerance: float = 0.25,
    separation: float = 0.5,
    progress: bool = False,
) -> DoctorResult:
    """Diagnose whether ``scheme`` holds on the model built by ``make_model(width)``.

    Parameters
    ----------
    make_model : callable
        ``make_model(width) -> nn.Module``; the first width is the base shape (the
        parameterization's ``base_width``; the model built there is the base model that
        tells which dimensions grow, see :func:`lmech.param.classify`).
    widths : sequence of int
        At least three strictly increasing widths (slopes are fitted over all of them).
    scheme : str
        Parameterization under test (default ``"mup"``).
    steps, seeds, seed : int
        Optimizer steps on one fixed batch; seeds averaged per width; seed offset.
    batch, loss_fn :
        ``(x, y)`` and ``loss_fn(output, y)``; default a random batch fitted to the first
        layer (:func:`example_batch`) and cross-entropy (MSE for a scalar output).
    lr, eps, optimizer :
        Base learning rate and Adam epsilon (at the base width) and the update geometry
        (``"adam"`` or ``"sgd"``). The slopes hardly depend on the learning rate while the
        updates are small (the update effects are then linear in it); a learning rate near
        the model's optimum shows the regime that matters for transfer.
    roles : mapping, optional
        Role overrides (parameter-name pattern -> role), as for ``Parameterization.apply``.
    control : str or None
        Negative control scheme (default ``"sp"``); None skips it (verdict at best
        ``holds`` without the evidence that the check can see a break).
    tolerance, separation : float
        A slope with ``|slope| > tolerance`` breaks the scheme; the control must reach an
        update-effect slope ``>= separation``.

    Returns
    -------
    DoctorResult
        ``verdict`` (``holds`` / ``breaks`` / ``inconclusive``), ``findings`` naming each
        parameter or module that breaks the scheme with its likely cause, ``warnings``
        (e.g. Adam eps), ``table()``, ``summary()``, ``to_dict()``.
    """
    t_start = time.perf_counter()
    if not callable(make_model):
        fail("make_model", "a callable make_model(width) -> nn.Module", make_model, TypeError)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        fail("widths", "a sequence of at least 3 increasing positive integers", widths, TypeError)
    grid = [check_int(w, "widths", lo=1) for w in widths]
    if len(grid) < 3 or any(b <= a for a, b in zip(grid, grid[1:])):
        fail("widths", "at least 3 strictly increasing values", widths)
    check_choice(scheme, "scheme", SCHEMES)
    if control is not None:
        check_choice(control, "control", SCHEMES)
    check_choice(optimizer, "optimizer", ("adam", "sgd"))
    steps = check_int(steps, "steps", lo=1)
    seeds = check_int(seeds, "seeds", lo=1)
    seed = check_int(seed, "seed", lo=0)
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False)
    eps = check_real(eps, "eps", lo=0.0)
    tolerance = check_real(tolerance, "tolerance", lo=0.0, lo_closed=False)
    separation = check_real(separation, "separation", lo=0.0)
    if roles is not None and not isinstance(roles, Mapping):
        fail("roles", "a mapping from parameter-name patterns to role names", roles, TypeError)
    n_args = len([p for p in inspect.signature(make_model).parameters.values()
                  if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    if n_args > 1:
        fail("make_model", "a factory taking one required argument, the width", make_model, TypeError)

    def build(w: int) -> nn.Module:
        m = make_model(w)
        if not isinstance(m, nn.Module):
            fail("make_model", "a factory returning an nn.Module", type(m).__name__, TypeError)
        return m

    base = build(grid[0])
    if batch is None:
        batch = example_batch(base, seed=seed)
    loss_fn = _default_loss if loss_fn is None else loss_fn
    examples = int(np.prod(batch[1].shape)) if torch.is_tensor(batch[1]) else 0
    schemes = [scheme] + ([control] if control is not None and control != scheme else [])
    params = {s: Parameterization(s, base_width=grid[0], optimizer=optimizer) for s in schemes}
    roles_table = params[scheme].table(build(grid[-1]), base_model=base, roles=roles, width=grid[-1])

    jobs = [(s, w, k) for s in schemes for w in grid for k in range(seeds)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="transfer doctor", unit="run")
    raw: dict[str, dict[tuple[str, str], dict[int, list[float]]]] = {s: {} for s in schemes}
    role_of: dict[str, str] = {}
    grads_top: dict[str, tuple[float, float]] = {}
    for s, w, k in jobs:
        vals, roles_w, grads = _measure(lambda: build(w), base, params[s], w, batch, loss_fn, lr, eps, steps,
                                        7919 * seed + 1000 * k + 17, roles)
        if s == scheme:
            role_of.update(roles_w)
            if w == grid[-1]:
                grads_top.update(grads)
        for key, v in vals.items():
            raw[s].setdefault(key, {}).setdefault(w, []).append(v)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    rows: list[dict[str, Any]] = []
    for s in schemes:
        for (name, q), per_w in raw[s].items():
            if set(per_w) != set(grid):
                continue
            vals = [float(np.mean(per_w[w])) for w in grid]
            rows.append({"scheme": s, "name": name, "quantity": q, "role": role_of.get(name, ""),
                         "values": vals, "slope": _slope(grid, vals)})

    base_inner = unwrap(base)
    grown_heads = any(isinstance(m, nn.MultiheadAttention) for m in base_inner.modules()) and _head_dim_grows(
        base_inner, unwrap(build(grid[-1])))
    findings: list[Finding] = []
    for r in rows:
        if r["scheme"] != scheme or not math.isfinite(r["slope"]):
            continue
        q, s_ = r["quantity"], r["slope"]
        # outputs of readouts may shrink at init under muP (zero or 1/width readouts): only growth breaks
        if q == "act_init" and s_ <= tolerance:
            continue
        if abs(s_) > tolerance:
            findings.append(Finding(r["name"], _QUANTITY[q], s_, _cause(r["name"], r["role"], q, s_, scheme,
                                                                          grown_heads)))
    if grown_heads and scheme in ("mup", "depth_mup", "completep"):
        logit = {r["name"]: r["slope"] for r in rows if r["scheme"] == scheme and r["quantity"] == "logit_change"}
        for name, mod in base_inner.named_modules():
            if isinstance(mod, nn.MultiheadAttention):
                findings = [f for f in findings if f.where != name]
                findings.append(Finding(name, "attention scale (from the architecture; the measured logit change "
                                              "only grows once queries and keys align)", logit.get(name, math.nan),
                                        _cause(name, "", "logit_change", 1.0, scheme, True)))
    # a module whose change grows only because one of its parameters does is reported once, by the parameter
    param_names = {f.where for f in findings if f.quantity == _QUANTITY["update"]}
    findings = [f for f in findings if not (f.quantity == _QUANTITY["act_change"]
                                            and any(n.startswith(f.where + ".") or (not f.where and "." not in n)
                                                    for n in param_names))]
    warnings_: list[Finding] = []
    for name, (g, e) in grads_top.items():
        if e > 0 and g > 0 and e >= 0.1 * g:
            warnings_.append(Finding(name, f"Adam eps {e:.2g} is {e / g:.2g}x its mean |gradient| {g:.2g} at "
                                           f"width {grid[-1]}", math.nan,
                                     "eps damps this parameter's update at large width; scale eps with the "
                                     "gradients (Parameterization.param_groups does under muP) or lower it",
                                     severity="warning"))
    control_max = None
    if len(schemes) > 1:
        cs = [abs(r["slope"]) for r in rows if r["scheme"] == schemes[1] and r["quantity"] == "update"
              and math.isfinite(r["slope"])]
        control_max = max(cs) if cs else 0.0
    notes: list[str] = []
    if examples > grid[0]:
        notes.append(f"the batch holds {examples} examples (tokens), more than the smallest width {grid[0]}: the "
                     "scalings are infinite-width statements at a fixed batch, so small widths may show a spurious "
                     "downward trend; use a smaller batch or larger widths")
    if findings:
        verdict = "breaks"
    elif control_max is not None and control_max < separation:
        verdict = "inconclusive"
        notes.append(f"the {schemes[1]} control did not break (largest slope {control_max:.2f} < {separation:g}): "
                     "widen the width grid (or check that the model has width-dependent layers) so the check can see a break")
    else:
        verdict = "holds"
        notes.append("every parameter's update effect and every activation is width-independent. If the learning "
                     "rate still does not transfer, suspect what a few steps cannot show: Adam eps (see warnings), "
                     "weight decay that is not scaled with the learning rate (use AdamW and lmech's groups), and "
                     "short runs, whose optimum drifts with width until training is long enough")
    return DoctorResult(
        scheme=scheme, control=schemes[1] if len(schemes) > 1 else None, widths=grid, steps=steps, seeds=seeds,
        lr=lr, optimizer=optimizer, tolerance=tolerance, separation=separation, roles_table=roles_table, rows=rows,
        findings=findings, warnings=warnings_, control_max_slope=control_max, verdict=verdict,
        seconds=time.perf_counter() - t_start, notes=notes,
    )


_QUANTITY = {"update": "update effect on its module's output", "act_init": "activation size at init",
             "act_change": "activation change after training", "logit_change": "attention-logit change"}


def _head_dim_grows(base: nn.Module, big: nn.Module) -> bool:
    dims = [m.head_dim for m in base.modules() if isinstance(m, nn.MultiheadAttention)]
    dims_big = [m.head_dim for m in big.modules() if isinstance(m, nn.MultiheadAttention)]
    return bool(dims) and len(dims) == len(dims_big) and any(b > a for a, b in zip(dims, dims_big))
