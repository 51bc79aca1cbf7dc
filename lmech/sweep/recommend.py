"""Hyperparameters for a target shape from a finished transfer sweep.

A transfer sweep (``lmech transfer``) measures the optimal learning rate ``lr*`` at several
widths (or depths) with a bootstrap interval over seeds. Under a parameterization that
transfers ("Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter
Transfer"; "Depthwise Hyperparameter Transfer in Residual Networks"; "Don't be lazy:
CompleteP enables compute-efficient deep transformers") the base learning rate at the target
shape is the swept one; any residual drift is carried along the fitted slope of
``log2 lr*`` against ``log2 size``:

    log2 lr*(target) = log2 lr*(s_near) + slope * log2(target / s_near),

where ``s_near`` is the swept size closest to the target (in log scale). The band is that
size's bootstrap interval moved the same way, widened by the slope's own uncertainty over
the extrapolated distance (the spread of the per-size optima about the fitted line).
The per-parameter-group values (learning rate, Adam epsilon, weight decay, init std) then
follow from the parameterization's rules at the target shape.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmech._validation import check_int, fail

__all__ = ["Recommendation", "recommend", "load_summary"]


@dataclass
class Recommendation:
    """Base learning rate (with band) and per-group settings for one target shape."""

    scheme: str
    size_key: str
    target: int
    lr: float
    lr_band: tuple[float, float]
    log2_lr: float
    nearest_size: float
    slope: float
    transfer_passed: bool
    extrapolation_doublings: float
    groups: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shape: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lr_band"] = list(self.lr_band)
        return d

    def text(self) -> str:
        lo, hi = self.lr_band
        lines = [f"{self.scheme}: {self.size_key} {self.target}: base learning rate {self.lr:.3g} "
                 f"(band {lo:.3g} .. {hi:.3g}; log2 {self.log2_lr:+.2f}), from the optimum at {self.size_key} "
                 f"{self.nearest_size:g} moved along the fitted slope {self.slope:+.3f} per doubling over "
                 f"{self.extrapolation_doublings:+.2f} doublings"]
        if self.groups:
            head = ("group", "roles", "params", "lr", "eps", "weight_decay", "init std")
            rows = [head] + [(str(i), ",".join(g["roles"]), str(g["n_params"]), f"{g['lr']:.4g}",
                              "-" if g.get("eps") is None else f"{g['eps']:.3g}", f"{g['weight_decay']:.4g}",
                              g["init_std"]) for i, g in enumerate(self.groups)]
            widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
            lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def load_summary(sweep_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``summary.json`` that ``lmech transfer`` wrote into ``sweep_dir``."""
    path = Path(sweep_dir) / "summary.json"
    if not path.is_file():
        fail("sweep_dir", "a folder holding the summary.json of a finished `lmech transfer` run", str(sweep_dir))
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"sweep_dir: {path} is not readable JSON ({exc})") from None
    if not isinstance(summary, dict) or not summary.get("analyses"):
        raise ValueError(f"sweep_dir: {path} holds no transfer analysis (did fewer than 2 sizes finish?)")
    return summary


def recommend(summary: Mapping[str, Any], target: int, *, scheme: str | None = None, depth: int | None = None,
              width: int | None = None, weight_decay: float | None = None, eps: float | None = None,
              experts: int | None = None) -> Recommendation:
    """Recommend hyperparameters at ``target`` (a width, or a depth for a depth sweep).

    Parameters
    ----------
    summary : mapping
        A sweep summary (:func:`load_summary`).
    target : int
        Target size along the sweep's axis.
    scheme : str, optional
        Which analysed scheme to use; default the muP-family one if the sweep has one, else
        the only one.
    depth, width : int, optional
        The other dimension of the target shape (default: the sweep's fixed value).
    weight_decay, eps : float, optional
        Base-shape weight decay and Adam epsilon (default: the sweep's, else 0 and 1e-8).
    experts : int, optional
        Expert count of an MoE model (only for sweeps whose trials take ``experts``).
    """
    target = check_int(target, "target", lo=1)
    analyses = summary.get("analyses") or {}
    if scheme is None:
        family = [s for s in analyses if s in ("mup", "depth_mup", "completep")]
        if len(analyses) == 1:
            scheme = next(iter(analyses))
        elif family:
            scheme = family[0]
        else:
            fail("scheme", f"one of the analysed schemes {sorted(analyses)}", scheme)
    if scheme not in analyses:
        fail("scheme", f"one of the analysed schemes {sorted(analyses)}", scheme)
    a = analyses[scheme]
    size_key = a["size_key"]
    optima = [o for o in a["optima"] if o.get("log2_lr") is not None and math.isfinite(o["log2_lr"])]
    if not optima:
        raise ValueError(f"scheme {scheme!r}: no size has a defined optimum (every LR diverged or the grid is too "
                         "coarse); widen the learning-rate grid")
    sizes = np.array([o["size"] for o in optima], dtype=float)
    x_star = np.array([o["log2_lr"] for o in optima], dtype=float)
    near = int(np.argmin(np.abs(np.log2(sizes) - math.log2(target))))
    slope = a.get("slope")
    slope = float(slope) if slope is not None and math.isfinite(slope) else 0.0
    dist = math.log2(target / sizes[near])
    log2_lr = float(x_star[near] + slope * dist)
    lo, hi = optima[near]["interval"]
    lo = x_star[near] if lo is None else lo
    hi = x_star[near] if hi is None else hi
    spread = 0.0
    if len(sizes) >= 3:
        fit = np.polyfit(np.log2(sizes), x_star, 1)
        resid = x_star - np.polyval(fit, np.log2(sizes))
        sxx = float(np.sum((np.log2(sizes) - np.log2(sizes).mean()) ** 2))
        if sxx > 0:
            spread = float(np.sqrt(np.sum(resid ** 2) / (len(sizes) - 2) / sxx)) * abs(dist)
    band = (2.0 ** (lo + slope * dist - spread), 2.0 ** (hi + slope * dist + spread))
    warnings: list[str] = []
    swept = summary.get("spec", {}).get("grid", {}).get(size_key, list(sizes))
    if target > 4 * max(swept) or target < min(swept) / 4:
        warnings.append(f"{size_key} {target} is more than two doublings outside the swept range "
                        f"{min(swept)}..{max(swept)}: the recommendation extrapolates")
    if not a.get("passed", False):
        warnings.append(f"the sweep's transfer criteria did not all pass for {scheme} (max shift "
                        f"{a.get('max_shift')}, slope {a.get('slope')}): the learning rate drifts with "
                        f"{size_key}; the band may be optimistic")
    rec = Recommendation(scheme=scheme, size_key=size_key, target=target, lr=2.0 ** log2_lr, lr_band=band,
                         log2_lr=log2_lr, nearest_size=float(sizes[near]), slope=slope,
                         transfer_passed=bool(a.get("passed", False)), extrapolation_doublings=dist, warnings=warnings)
    _groups(rec, summary, scheme, size_key, target, depth, width, weight_decay, eps, experts)
    return rec


def _groups(rec: Recommendation, summary: Mapping[str, Any], scheme: str, size_key: str, target: int,
            depth: int | None, width: int | None, weight_decay: float | None, eps: float | None,
            experts: int | None) -> None:
    """Fill ``rec.groups`` from the parameterization's rules when the sweep used the built-in trial."""
    from lmech.sweep.spec import DEFAULT_TRIAL

    spec = summary.get("spec", {})
    base = dict(spec.get("base", {}))
    if experts is not None:
        check_int(experts, "experts", lo=1)
        if "experts" not in base and "experts" not in spec.get("grid", {}):
            fail("experts", "given only for a sweep whose model has experts", experts)
        base["experts"] = experts
    shape = {size_key: target}
    other = "depth" if size_key == "width" else "width"
    given = depth if other == "depth" else width
    if given is not None:
        shape[other] = check_int(given, other, lo=1)
    elif other in base:
        shape[other] = base[other]
    rec.shape = dict(shape)
    if spec.get("trial") != DEFAULT_TRIAL:
        rec.warnings.append("the sweep used a custom trial function: per-group values are not computed (apply the "
                            "parameterization to your model with the recommended base learning rate)")
        return
    from lmech.param import Parameterization
    from lmech.sim.hp_trial import TrialConfig, build_model

    cfg = TrialConfig.from_dict({**base, **shape, "scheme": scheme, "lr": rec.lr, "seed": 0})
    if weight_decay is None:
        weight_decay = cfg.weight_decay
    if eps is None:
        eps = cfg.eps
    opt = "sgd" if cfg.optimizer == "sgd" else "adam"
    p = Parameterization(scheme, base_width=cfg.base_width, base_depth=cfg.base_depth, optimizer=opt,
                         init_std=cfg.init_std)
    model = build_model(cfg)
    layout = p.layout(model)
    factors = p.factors(layout)
    for g in p.param_groups(model, lr=rec.lr, weight_decay=weight_decay, eps=eps):
        stds = sorted({_init_std(p, layout.roles[n], factors[n]) for n in g["names"]})
        rec.groups.append({"roles": g["roles"], "names": g["names"], "n_params": sum(t.numel() for t in g["params"]),
                           "lr": g["lr"], "eps": g.get("eps"), "weight_decay": g["weight_decay"],
                           "init_std": ", ".join(stds)})


def _init_std(p: Any, role: Any, f: Any) -> str:
    if role.init != "normal":
        return role.init
    if p.zero_readout and role.kind == "readout":
        return "zeros"
    return f"{p.init_std / math.sqrt(role.fan_in / role.m_in) * f.std:.4g}"
