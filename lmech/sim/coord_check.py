"""Coordinate check: activation and update sizes against width or depth.

The protocol follows the check introduced with
"Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer"
and its depth version in "Depthwise Hyperparameter Transfer in Residual Networks: Dynamics
and Scaling Limit" / "Don't be lazy: CompleteP enables compute-efficient deep transformers".

For every tracked module output ``h`` (every layer, the residual stream after each block,
attention logits, the network output) the model is trained for ``steps`` optimizer steps
on one **fixed batch** and, at every ``t = 0..steps``, we record

* ``size_t = RMS(h_t)`` (and the mean absolute value ``size_l1``),
* ``delta_t = RMS(h_t - h_0)``, the change since initialisation on the same batch,

averaged over seeds. For each quantity, statistic and ``t`` we fit
``log2 q = s log2(x / x_base) + c`` over the **largest** ``fit_points`` grid points (small
widths carry an ``O(1/sqrt(width))`` fluctuation term that biases the full-grid slope).

Pass criterion (the scheme under test): ``|s| <= tolerance`` for every ``delta_t`` with
``t >= 1`` and every ``size_t`` (the network output and attention logits may *shrink* at
init under muP, so only ``s <= tolerance`` applies to their sizes), and seed-mean max/min
ratio ``<= max_ratio`` over the fitted points. Negative controls (width: SP and NTP; depth:
muP without depth scaling) must *separate*: ``|s| >= separation`` for at least one
quantity, otherwise the check is ``inconclusive``, not a pass.

On the depth axis only depth-comparable quantities are tracked: the residual stream after
the last block (size and change) and the network output.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmech._validation import check_array, check_choice, check_int, check_real, fail
from lmech.param.parameterization import Parameterization
from lmech.param.roles import unwrap
from lmech.param.rules import SCHEMES

__all__ = ["coord_check", "CoordCheckResult", "fit_slope", "DEFAULT_LR", "MUP_FAMILY"]

MUP_FAMILY = ("mup", "depth_mup", "completep")
# base learning rates near the optimum of the default small models (measured; see tests)
DEFAULT_LR = {"adam": {"mlp": 1e-2, "resmlp": 1e-2, "gpt": 1e-2}, "sgd": {"mlp": 0.1, "resmlp": 0.1, "gpt": 0.1}}
_STATS = ("size", "delta", "size_l1")


def fit_slope(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Least-squares slope of ``log2 y`` against ``log2 x`` (``-inf``/``nan`` if y has zeros)."""
    # x: at least two distinct positive finite values; y: as many entries, where zeros and NaN
    # are allowed and give a NaN slope (the coordinate check's "no fit").
    xa = check_array(x, "x", ndim=1, positive=True, min_size=2)
    ya = check_array(y, "y", ndim=1, finite=False)
    if ya.shape != xa.shape:
        fail("y", f"of the length of x ({len(xa)})", ya)
    if np.ptp(np.log2(xa)) == 0:
        fail("x", "at least two distinct values", x)
    lx = np.log2(xa)
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log2(ya)
    if not np.all(np.isfinite(ly)):
        return float("nan")
    lx = lx - lx.mean()
    return float(np.dot(lx, ly - ly.mean()) / np.dot(lx, lx))


@dataclass
class CoordCheckResult:
    """Outcome of :func:`coord_check`.

    Attributes
    ----------
    axis : {"width", "depth"}
    grid : list of int
        Widths or depths (the first is the base).
    scheme : str
        Scheme under test; ``controls`` the negative controls that were run.
    rows : list of dict
        One row per (scheme, quantity, stat, t, x): ``mean``, ``std`` over seeds.
    slopes : dict
        ``slopes[scheme][quantity][stat][t]`` = fitted slope on the largest ``fit_points``.
    full_slopes : dict
        The same fitted on the whole grid (information only).
    violations : list of str
        Criteria the scheme under test broke.
    control_max_slope : dict
        Largest ``|slope|`` reached by each control.
    verdict : {"pass", "fail", "inconclusive"}
    """

    axis: str
    grid: list[int]
    scheme: str
    controls: list[str]
    steps: int
    seeds: int
    lr: float
    optimizer: str
    fit_points: int
    tolerance: float
    separation: float
    max_ratio: float
    rows: list[dict[str, Any]]
    slopes: dict[str, dict[str, dict[str, dict[int, float]]]]
    full_slopes: dict[str, dict[str, dict[str, dict[int, float]]]]
    violations: list[str]
    control_max_slope: dict[str, float]
    max_abs_slope: float
    verdict: str
    seconds: float
    quantities: list[str] = field(default_factory=list)
    zero_readout: bool = False

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        from lmech._json import jsonable

        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return jsonable(d)

    def means(self, scheme: str, quantity: str, stat: str, t: int) -> np.ndarray:
        """Seed-mean of ``stat`` of ``quantity`` at step ``t`` over the grid."""
        by_x = {r["x"]: r["mean"] for r in self.rows
                if r["scheme"] == scheme and r["quantity"] == quantity and r["stat"] == stat and r["t"] == t}
        return np.array([by_x[x] for x in self.grid])

    def summary(self) -> str:
        """Human-readable summary: verdict, worst slopes, control separation."""
        lines = [
            f"coordinate check over {self.axis} {self.grid}: scheme {self.scheme}, {self.optimizer} lr {self.lr:g}, "
            f"{self.steps} steps, {self.seeds} seeds, slopes fitted on the largest {self.fit_points} points"
            + (", readout zero-initialised" if self.zero_readout else ""),
            f"  {self.scheme}: max |slope| {self.max_abs_slope:.3f} (tolerance {self.tolerance:g})",
        ]
        for c, s in self.control_max_slope.items():
            ok = "separates" if s >= self.separation else "does NOT separate"
            lines.append(f"  control {c}: max |slope| {s:.3f} ({ok}; needs >= {self.separation:g})")
        for v in self.violations[:20]:
            lines.append(f"  violation: {v}")
        if len(self.violations) > 20:
            lines.append(f"  ... {len(self.violations) - 20} more violations")
        lines.append(f"verdict: {self.verdict.upper()}")
        return "\n".join(lines)

    def plot(self, path: str | None = None, scheme: str | None = None):
        """One panel per tracked quantity: size (solid) and change since init (dashed) against
        the grid, one colour per step. Returns the matplotlib figure (saved when ``path``)."""
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        scheme = scheme or self.scheme
        qs = self.quantities
        ncol = min(4, len(qs))
        nrow = int(math.ceil(len(qs) / ncol))
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.7 * nrow), squeeze=False)
        cmap = plt.get_cmap("viridis")
        for ax, q in zip(axes.ravel(), qs):
            for t in range(self.steps + 1):
                color = cmap(t / max(1, self.steps))
                ax.plot(self.grid, self.means(scheme, q, "size", t), "-o", ms=3, color=color,
                        label=f"size t={t}")
                if t >= 1:
                    ax.plot(self.grid, self.means(scheme, q, "delta", t), "--s", ms=3, color=color,
                            label=f"change t={t}")
            s = self.slopes[scheme][q]["delta"].get(self.steps, float("nan"))
            ax.set_title(f"{q}\nslope(change, t={self.steps}) {s:+.2f}", fontsize=8)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.tick_params(labelsize=7)
        for ax in axes.ravel()[len(qs):]:
            ax.axis("off")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(f"coordinate check: {scheme} vs {self.axis} ({self.optimizer}, lr {self.lr:g})", fontsize=10)
        fig.supxlabel(self.axis)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


# --------------------------------------------------------------------------- built-in models and batches
def _builtin_factory(name: str, batch_size: int, seq_len: int) -> tuple[Callable[[int, int], nn.Module], tuple]:
    from lmech.models import GPT, MLP, ResMLP

    if name == "gpt":
        from lmech.data.text import load_text

        corpus = load_text()
        ids = torch.tensor(corpus.train[: batch_size * (seq_len + 1) * 16])
        starts = torch.arange(batch_size) * (seq_len + 1) * 16
        seq = ids[starts[:, None] + torch.arange(seq_len + 1)]
        batch = (seq[:, :-1], seq[:, 1:])
        return (lambda w, d: GPT(corpus.vocab_size, seq_len=seq_len, width=w, depth=d)), batch
    from lmech.data.vision import load_mnist1d

    ds = load_mnist1d(4000, seed=42)
    X = torch.tensor(ds.X[:batch_size], dtype=torch.float32)
    y = torch.tensor(ds.y[:batch_size])
    cls = MLP if name == "mlp" else ResMLP
    return (lambda w, d: cls(X.shape[1], ds.n_classes, width=w, depth=d)), (X, y)


def _cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


# --------------------------------------------------------------------------- tracking
class _Tracker:
    """Forward hooks storing the outputs of the tracked modules (float32 copies)."""

    def __init__(self, model: nn.Module, axis: str) -> None:
        self.values: dict[str, torch.Tensor] = {}
        self.handles: list[Any] = []
        inner = unwrap(model)
        blocks_name = getattr(inner, "lmech_blocks", None)
        blocks: list[tuple[str, nn.Module]] = []
        if blocks_name:
            blocks = [(f"{blocks_name}.{n}", b) for n, b in inner.get_submodule(blocks_name).named_children()]
        if axis == "depth":
            if not blocks:
                fail("model", "a residual model (with `lmech_blocks`) for a depth check", type(inner).__name__)
            self._hook(blocks[-1][1], "resid.last")
            return
        for name, mod in inner.named_modules():
            if name and any(True for _ in mod.parameters(recurse=False)):
                self._hook(mod, name)
            if hasattr(mod, "logit_hook"):
                mod.logit_hook = self._store(f"{name}.logits")
                self.handles.append(_Reset(mod))
        for name, b in blocks:
            self._hook(b, f"{name} (resid)")

    def _store(self, key: str) -> Callable[[torch.Tensor], None]:
        def store(t: torch.Tensor) -> None:
            self.values[key] = t.detach().float().clone()
        return store

    def _hook(self, mod: nn.Module, key: str) -> None:
        store = self._store(key)
        self.handles.append(mod.register_forward_hook(lambda m, i, o: store(o) if torch.is_tensor(o) else None))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class _Reset:
    def __init__(self, mod: nn.Module) -> None:
        self.mod = mod

    def remove(self) -> None:
        self.mod.logit_hook = None


def _run_one(make: Callable[[], nn.Module], param: Parameterization, batch: tuple, loss_fn, lr: float, steps: int,
             seed: int, axis: str, roles: Mapping[str, str] | None = None,
             width: int | None = None) -> tuple[dict[str, list[tuple[float, float, float]]], set[str]]:
    """Train one model for ``steps`` steps on a fixed batch.

    Returns per quantity, per t: (size, delta, l1); and the names of readout modules (whose
    output, like the network output, may shrink at init under muP)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = make()
    param.apply(model, generator=gen, roles=roles, width=width)
    groups = param.param_groups(model, lr=lr)
    opt = torch.optim.Adam(groups) if param.optimizer == "adam" else torch.optim.SGD(groups, lr=lr)
    tracker = _Tracker(model, axis)
    layout = param.layout(model)
    readouts = {r.readout_site for r in layout.roles.values() if r.readout_site}
    readouts |= {n.rsplit(".", 1)[0] for n, r in layout.roles.items() if r.kind == "readout" and "." in n}
    x, y = batch
    init: dict[str, torch.Tensor] = {}
    out: dict[str, list[tuple[float, float, float]]] = {}
    try:
        for t in range(steps + 1):
            tracker.values.clear()
            if t < steps:
                output = model(x)
                loss = loss_fn(output, y)
            else:
                with torch.no_grad():
                    output = model(x)
            tracker.values["output"] = output.detach().float().clone()
            for key, v in tracker.values.items():
                if t == 0:
                    init[key] = v
                size = float(v.pow(2).mean().sqrt())
                delta = float((v - init[key]).pow(2).mean().sqrt())
                l1 = float(v.abs().mean())
                out.setdefault(key, []).append((size, delta, l1))
            if t < steps:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        tracker.remove()
    return out, readouts


# --------------------------------------------------------------------------- the check
def coord_check(
    model: str | Callable[[int, int], nn.Module] = "mlp",
    scheme: str | Parameterization = "mup",
    *,
    widths: Sequence[int] | None = None,
    depths: Sequence[int] | None = None,
    width: int = 128,
    depth: int | None = None,
    steps: int = 4,
    seeds: int = 3,
    seed: int = 0,
    optimizer: str = "adam",
    lr: float | None = None,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    batch_size: int | None = None,
    seq_len: int = 32,
    controls: Sequence[str] | None = None,
    zero_readout: bool | None = None,
    fit_points: int = 4,
    tolerance: float = 0.1,
    separation: float = 0.4,
    max_ratio: float = 1.5,
    roles: Mapping[str, str] | None = None,
    progress: bool = False,
) -> CoordCheckResult:
    """Run the coordinate check of ``scheme`` (and its negative controls) over widths or depths.

    Parameters
    ----------
    model : {"mlp", "resmlp", "gpt"} or callable
        A built-in model (trained on a fixed MNIST-1D batch of ``batch_size`` examples,
        default 128, or ``batch_size`` text windows of ``seq_len`` characters, default 8 x 32,
        for ``gpt``), or
        ``make_model(width, depth) -> nn.Module`` (then ``batch=(x, y)`` is required; the
        width is handed to :meth:`Parameterization.apply` as ``width=``).
    scheme : str or Parameterization
        Scheme under test. A string gets base width = first width (width axis) or
        ``width``, and base depth = first depth (depth axis) or ``depth``. A
        ``Parameterization`` is used as given (its base shape and ``zero_readout``).
    widths, depths : sequence of int
        The grid (increasing; exactly one of the two). Default widths 64..1024.
    width, depth : int
        Fixed width for a depth check; fixed depth for a width check (default: 3 layers
        for ``mlp``, 2 blocks otherwise).
    steps, seeds : int
        Optimizer steps on the fixed batch (t = 0..steps recorded), seeds averaged.
    seed : int
        Offset of the seed sequence (``seeds`` initialisations per point); same seed, same numbers.
    optimizer : {"adam", "sgd"}
        Adam (``torch.optim.Adam``, no weight decay) or plain SGD, with the scheme's groups.
    lr : float, optional
        Base learning rate; default near the optimum of the built-in models
        (:data:`DEFAULT_LR`). A tiny LR makes every scheme look flat.
    loss_fn : callable, optional
        ``loss_fn(output, y)``; default cross-entropy over the last dimension.
    controls : sequence of str, optional
        Negative-control schemes; default ``("sp", "ntp")`` on the width axis and
        ``("mup",)`` on the depth axis for the muP family, none otherwise.
    zero_readout : bool, optional
        Zero-initialise the readout (the muP recommendation of TP5, App. D.2) in the scheme
        and its controls; default True for a scheme given by name. With a random readout
        the output change at ``t = 1`` carries an ``m^-1/2`` term ``W_0 dh / m`` that is
        only small at large width (measured: slope -0.13 for the GPT over widths
        128..1024), so small CPU grids flag it.
    fit_points, tolerance, separation, max_ratio :
        Fit on the largest ``fit_points`` grid points; pass if ``|slope| <= tolerance`` and
        max/min ``<= max_ratio``; controls must reach ``|slope| >= separation``.
    roles : mapping of str to str, optional
        Role overrides (parameter-name glob pattern -> role) passed to
        :meth:`Parameterization.apply` for every model, scheme and control; for models whose
        roles cannot be inferred (see :func:`lmech.param.classify`).

    Returns
    -------
    CoordCheckResult
        Table, slopes, violations, verdict (``pass``/``fail``/``inconclusive``); ``.plot()``.
    """
    t_start = time.perf_counter()
    if (widths is None) == (depths is None):
        if widths is None and depths is None:
            widths = (64, 128, 256, 512, 1024)
        else:
            fail("depths", "None when `widths` is given (one axis at a time)", depths)
    axis = "width" if widths is not None else "depth"
    grid_in = widths if widths is not None else depths
    if isinstance(grid_in, (str, bytes)) or not isinstance(grid_in, Sequence):
        fail(f"{axis}s", "a sequence of positive integers", grid_in, TypeError)
    grid = [check_int(v, f"{axis}s", lo=1) for v in grid_in]
    if len(grid) < 2 or any(b <= a for a, b in zip(grid, grid[1:])):
        fail(f"{axis}s", "at least 2 strictly increasing values", grid_in)
    steps = check_int(steps, "steps", lo=1)
    seeds = check_int(seeds, "seeds", lo=1)
    seed = check_int(seed, "seed", lo=0)
    fit_points = check_int(fit_points, "fit_points", lo=2)
    tolerance = check_real(tolerance, "tolerance", lo=0.0)
    separation = check_real(separation, "separation", lo=0.0)
    max_ratio = check_real(max_ratio, "max_ratio", lo=1.0)
    check_choice(optimizer, "optimizer", ("adam", "sgd"))
    width = check_int(width, "width", lo=1)
    if roles is not None and not isinstance(roles, Mapping):
        fail("roles", "a mapping from parameter-name patterns to role names", roles, TypeError)

    if isinstance(model, str):
        check_choice(model, "model", ("mlp", "resmlp", "gpt"))
        if batch_size is None:
            batch_size = 8 if model == "gpt" else 128
        make, default_batch = _builtin_factory(model, check_int(batch_size, "batch_size", lo=1),
                                               check_int(seq_len, "seq_len", lo=1))
        batch = default_batch if batch is None else batch
        lr_default = DEFAULT_LR[optimizer][model]
        depth_default = 3 if model == "mlp" else 2
    elif callable(model):
        make = model
        if batch is None:
            fail("batch", "an (inputs, targets) pair when `model` is a callable", batch, TypeError)
        lr_default = None
        depth_default = 2
    else:
        fail("model", "'mlp', 'resmlp', 'gpt' or a callable make_model(width, depth)", model, TypeError)
    depth = depth_default if depth is None else check_int(depth, "depth", lo=1)
    if lr is None:
        if lr_default is None:
            fail("lr", "given when `model` is a callable", lr, TypeError)
        lr = lr_default
    lr = check_real(lr, "lr", lo=0.0, lo_closed=False)
    loss_fn = _cross_entropy if loss_fn is None else loss_fn

    if zero_readout is not None and not isinstance(zero_readout, bool):
        fail("zero_readout", "a bool or None", zero_readout, TypeError)
    if isinstance(scheme, Parameterization):
        target = dataclasses.replace(scheme, optimizer=optimizer)
        if zero_readout is not None:
            target = dataclasses.replace(target, zero_readout=zero_readout)
    else:
        check_choice(scheme, "scheme", SCHEMES)
        target = Parameterization(
            scheme, base_width=grid[0] if axis == "width" else width,
            base_depth=grid[0] if axis == "depth" else depth, optimizer=optimizer,
            zero_readout=True if zero_readout is None else zero_readout,
        )
    if controls is None:
        if target.scheme in MUP_FAMILY:
            controls = ("sp", "ntp") if axis == "width" else (("mup",) if target.scheme != "mup" else ())
        else:
            controls = ()
    controls = [check_choice(c, "controls", SCHEMES) for c in controls]
    schemes = [target] + [dataclasses.replace(target, scheme=c, alpha=None) for c in controls]

    # ---- measure
    raw: dict[str, dict[str, dict[int, list[list[tuple[float, float, float]]]]]] = {}
    jobs = [(p, x, s) for p in schemes for x in grid for s in range(seeds)]
    output_like: set[str] = {"output"}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="coord-check", unit="run")
    for p, x, s in jobs:
        w, d = (x, depth) if axis == "width" else (width, x)
        res, readouts = _run_one(lambda: make(w, d), p, batch, loss_fn, lr, steps, 7919 * seed + 1000 * s + 17, axis,
                                 roles, w)
        output_like.update(readouts)
        per_q = raw.setdefault(p.scheme, {})
        for q, series in res.items():
            per_q.setdefault(q, {}).setdefault(x, []).append(series)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    # ---- aggregate and fit
    quantities = list(raw[target.scheme].keys())
    quantities = [q for q in quantities if q != "output"] + ["output"]
    mult = [x / grid[0] for x in grid]
    k = min(fit_points, len(grid))
    rows: list[dict[str, Any]] = []
    slopes: dict[str, dict[str, dict[str, dict[int, float]]]] = {}
    full: dict[str, dict[str, dict[str, dict[int, float]]]] = {}
    means: dict[tuple[str, str, str, int], np.ndarray] = {}
    for p in schemes:
        sc = p.scheme
        for q in quantities:
            if q not in raw[sc]:
                continue
            for si, stat in enumerate(_STATS):
                for t in range(steps + 1):
                    m_list = []
                    for x in grid:
                        vals = np.array([series[t][si] for series in raw[sc][q][x]])
                        mean, std = float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
                        rows.append({"scheme": sc, "quantity": q, "stat": stat, "t": t, "x": x,
                                     "mean": mean, "std": std})
                        m_list.append(mean)
                    arr = np.array(m_list)
                    means[(sc, q, stat, t)] = arr
                    if stat == "delta" and t == 0:
                        continue
                    slopes.setdefault(sc, {}).setdefault(q, {}).setdefault(stat, {})[t] = fit_slope(mult[-k:], arr[-k:])
                    full.setdefault(sc, {}).setdefault(q, {}).setdefault(stat, {})[t] = fit_slope(mult, arr)

    # ---- criteria
    violations: list[str] = []
    worst = 0.0
    for q in quantities:
        output_like_q = q in output_like or q.endswith(".logits")
        for stat in ("size", "delta"):
            for t, s in slopes[target.scheme][q][stat].items():
                arr = means[(target.scheme, q, stat, t)][-k:]
                if not np.any(arr):
                    continue  # exactly zero at every width (e.g. no gradient yet through a zero readout)
                if not math.isfinite(s):
                    violations.append(f"{q} {stat} t={t}: zero or non-finite values {arr.tolist()}")
                    worst = math.inf
                    continue
                lower_exempt = output_like_q and stat == "size"
                bad_slope = s > tolerance or (s < -tolerance and not lower_exempt)
                worst = max(worst, s if lower_exempt else abs(s))
                ratio = float(arr.max() / arr.min()) if arr.min() > 0 else math.inf
                bad_ratio = ratio > max_ratio and not lower_exempt
                if bad_slope or bad_ratio:
                    violations.append(f"{q} {stat} t={t}: slope {s:+.3f}, max/min {ratio:.2f}")
    control_max: dict[str, float] = {}
    for c in controls:
        vals = [abs(s) for q in slopes[c] for stat in ("size", "delta") for s in slopes[c][q][stat].values()
                if math.isfinite(s)]
        control_max[c] = max(vals) if vals else 0.0
    if violations:
        verdict = "fail"
    elif any(v < separation for v in control_max.values()) or (target.scheme in MUP_FAMILY and not controls):
        verdict = "inconclusive"
    else:
        verdict = "pass"
    return CoordCheckResult(
        axis=axis, grid=grid, scheme=target.scheme, controls=list(controls), steps=steps, seeds=seeds, lr=lr,
        optimizer=optimizer, fit_points=k, tolerance=tolerance, separation=separation, max_ratio=max_ratio,
        rows=rows, slopes=slopes, full_slopes=full, violations=violations, control_max_slope=control_max,
        max_abs_slope=worst, verdict=verdict, seconds=time.perf_counter() - t_start, quantities=quantities,
        zero_readout=target.zero_readout,
    )
