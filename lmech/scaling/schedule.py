"""Plan a learning-rate schedule from the power-law theory of optimal schedules.

The theory (:mod:`lmech.theory.schedules`, "Theory of Optimal Learning Rate Schedules and
Scaling Laws for a Random Feature Model") models training as online SGD on a linear model with
power-law features: eigenvalues ``lam_k ~ k^{-alpha}`` (``alpha > 1``, the capacity exponent)
and a target whose loss under gradient flow decays as ``t^{-beta}`` (``beta``, the source
exponent; :func:`lmech.theory.schedules.power_law_problem`). For a horizon and batch size it
finds the schedule minimising the final loss by optimal control, and here it is set beside
three baselines whose peak rate is tuned in the same model: constant, cosine decay, and
warmup-stable-decay (1 % linear warmup, constant, linear decay to 0 over the last 20 %).

Units: the model's rates are divided by its stability cap (0.98 x the critical constant rate),
giving a *multiplier* in [0, 1]; the exported rate is ``lr_max * multiplier`` where ``lr_max``
is your peak learning rate (the largest rate you would run at constant). :func:`as_lr_lambda`
turns a schedule into the ``lr_lambda`` of ``torch.optim.lr_scheduler.LambdaLR`` (which
multiplies the optimizer's base rate, so set that to ``lr_max``). Nothing here imports torch.

For long horizons the control problem is solved on ``model_steps`` steps (default
``min(steps, 1000)``) and the shape is resampled linearly to ``steps``; predicted losses are
those of the model horizon. Beyond 300 model steps the schedule is optimised on 64
piecewise-linear knots (:func:`lmech.theory.schedules.optimal_schedule`'s ``n_knots``).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmech._json import jsonable
from lmech._validation import check_int, check_real, fail
from lmech.fits import fit_power_law
from lmech.theory import schedules as theory

__all__ = ["LRSchedule", "optimal_lr_schedule", "as_lr_lambda", "fit_loss_curve", "read_loss_curve",
           "wsd_schedule", "PredictedExponents", "exponents_from_prediction"]


def wsd_schedule(steps: int, *, warmup_fraction: float = 0.01, decay_fraction: float = 0.2) -> np.ndarray:
    """Warmup-stable-decay shape in [0, 1]: linear warmup, constant, then linear decay to 0."""
    T = check_int(steps, "steps", lo=2)
    wf = check_real(warmup_fraction, "warmup_fraction", lo=0.0, hi=0.5)
    df = check_real(decay_fraction, "decay_fraction", lo=0.0, hi=1.0, lo_closed=False)
    W = int(round(wf * T))
    K = max(1, int(round(df * T)))
    t = np.arange(T, dtype=float)
    warm = (t + 1) / max(W, 1)
    decay = (T - t) / K  # 1 at the start of the decay, 1/K at the last step
    return np.clip(np.minimum(np.where(t < W, warm, 1.0), decay), 0.0, 1.0)


@dataclass(frozen=True)
class LRSchedule:
    """A planned schedule: per-step rates, the theory's predictions and the baselines.

    Attributes
    ----------
    step : ndarray of int, shape (steps,)
    lr : ndarray, shape (steps,)
        ``lr_max * multiplier`` (the rate of each optimizer step).
    multiplier : ndarray, shape (steps,)
        Rate relative to ``lr_max`` (in [0, 1]).
    lr_max : float
        The peak rate the multipliers refer to (the model's cap when not given).
    predicted_loss : dict[str, float]
        Final loss in the model (horizon ``model_steps``) of ``"optimal"``, ``"constant"``,
        ``"cosine"`` and ``"wsd"``, each baseline with its peak tuned.
    baselines : dict[str, ndarray]
        Multipliers of the baselines at ``steps`` (tuned peak / cap times the shape).
    alpha, beta : float
    batch_size, model_steps, n_modes : int
    converged : bool
        The optimal-control solve converged.
    source : str
        How the exponents were obtained.
    """

    step: np.ndarray
    lr: np.ndarray
    multiplier: np.ndarray
    lr_max: float
    predicted_loss: dict
    baselines: dict
    alpha: float
    beta: float
    batch_size: int
    model_steps: int
    n_modes: int
    converged: bool
    source: str = "given"
    extras: dict = field(default_factory=dict, repr=False)

    @property
    def steps(self) -> int:
        return int(self.step.size)

    def to_dict(self) -> dict:
        """Plain data for ``schedule.json``: ``step`` and ``lr`` per optimizer step, with the
        multipliers, the predicted final losses and the inputs."""
        return jsonable({
            "step": self.step.tolist(), "lr": self.lr.tolist(), "multiplier": self.multiplier.tolist(),
            "lr_max": self.lr_max, "predicted_final_loss": self.predicted_loss,
            "baselines": {k: v.tolist() for k, v in self.baselines.items()},
            "alpha": self.alpha, "beta": self.beta, "batch_size": self.batch_size,
            "model_steps": self.model_steps, "n_modes": self.n_modes, "converged": self.converged,
            "source": self.source,
        })

    def plot(self, path) -> None:
        """Write a figure of the optimal schedule beside the baselines."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6.5, 4))
        ax.plot(self.step, self.lr, "k", lw=2, label=f"optimal (L={self.predicted_loss['optimal']:.4g})")
        for k, v in self.baselines.items():
            ax.plot(self.step, self.lr_max * v, lw=1, label=f"{k} (L={self.predicted_loss[k]:.4g})")
        ax.set(xlabel="step", ylabel="learning rate",
               title=f"alpha={self.alpha:.3g}, beta={self.beta:.3g}, batch {self.batch_size}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _resample(shape: np.ndarray, steps: int) -> np.ndarray:
    if shape.size == steps:
        return shape.copy()
    u_model = np.linspace(0.0, 1.0, shape.size)
    return np.interp(np.linspace(0.0, 1.0, steps), u_model, shape)


def optimal_lr_schedule(alpha: float, beta: float, steps: int, *, batch_size: int = 1, lr_max: float | None = None,
                        noise: float = 0.0, n_modes: int = 400, model_steps: int | None = None,
                        source: str = "given") -> LRSchedule:
    """The theory's optimal schedule for a power-law model, beside tuned baselines.

    Parameters
    ----------
    alpha : float
        Capacity exponent (> 1): feature eigenvalues decay as ``k^{-alpha}``.
    beta : float
        Source exponent (> 0): the loss under gradient flow decays as ``t^{-beta}`` (what
        :func:`fit_loss_curve` estimates from a loss curve).
    steps : int
        Horizon (optimizer steps, >= 10).
    batch_size : int
    lr_max : float, optional
        Your peak learning rate; the exported ``lr`` is ``lr_max * multiplier``. Default: the
        model's own cap (rates in the model's units).
    noise : float
        Label-noise variance of the model (an irreducible loss; favours decaying rates).
    n_modes : int
        Feature modes of the model (cost is linear in it).
    model_steps : int, optional
        Horizon of the control problem (default ``min(steps, 1000)``); the shape is resampled.
    source : str
        Recorded in the result (how the exponents were obtained).
    """
    a = check_real(alpha, "alpha", lo=1.0, lo_closed=False)
    b = check_real(beta, "beta", lo=0.0, lo_closed=False)
    T = check_int(steps, "steps", lo=10)
    B = check_int(batch_size, "batch_size", lo=1)
    s2 = check_real(noise, "noise", lo=0.0)
    M = check_int(n_modes, "n_modes", lo=8)
    Tm = min(T, 1000) if model_steps is None else check_int(model_steps, "model_steps", lo=10, hi=T)
    lam, p = theory.power_law_problem(M, a, b)
    # every step's rate is a free variable up to 300 model steps; beyond, 64 piecewise-linear
    # knots dense near both ends (same optimum to ~0.1 % in the cases tried, several times faster)
    res = theory.optimal_schedule(lam, p, Tm, B, s2, n_knots=None if Tm <= 300 else 64)
    cap = res.lr_cap
    peak = cap if lr_max is None else check_real(lr_max, "lr_max", lo=0.0, lo_closed=False)
    shapes = {"constant": theory.constant_schedule(Tm), "cosine": theory.cosine_schedule(Tm),
              "wsd": wsd_schedule(Tm)}
    losses = {"optimal": float(res.loss)}
    baselines = {}
    for name, shape in shapes.items():
        top, loss = theory.tune_peak_lr(lam, p, shape, B, s2, lr_cap=cap)
        losses[name] = float(loss)
        baselines[name] = _resample(top / cap * shape, T)
    mult = np.clip(_resample(res.lr / cap, T), 0.0, 1.0)
    return LRSchedule(step=np.arange(T), lr=peak * mult, multiplier=mult, lr_max=float(peak),
                      predicted_loss=losses, baselines=baselines, alpha=a, beta=b, batch_size=B, model_steps=Tm,
                      n_modes=M, converged=bool(res.converged), source=source,
                      extras={"model_cap": float(cap), "critical_lr": float(res.critical_lr),
                              "message": res.message})


class _LRLambda:
    """Multiplier of step ``t`` (held at the last value after the horizon); picklable."""

    def __init__(self, multiplier: np.ndarray) -> None:
        self.multiplier = [float(v) for v in multiplier]

    def __call__(self, step: int) -> float:
        i = int(step)
        if i < 0:
            raise ValueError(f"`step` must be >= 0; got {step}")
        return self.multiplier[min(i, len(self.multiplier) - 1)]


def as_lr_lambda(schedule):
    """``lr_lambda`` for ``torch.optim.lr_scheduler.LambdaLR(optimizer, as_lr_lambda(s))``.

    ``schedule`` is an :class:`LRSchedule`, a mapping read from ``schedule.json`` (its
    ``multiplier`` list), or a 1-d sequence of multipliers. LambdaLR multiplies the optimizer's
    base rate by the returned value, so set the optimizer's ``lr`` to the schedule's ``lr_max``;
    optimizer step ``t`` (counting from 0, one ``scheduler.step()`` after each) then runs at
    ``lr_max * multiplier[t]``; after the horizon the last value is kept.
    """
    if isinstance(schedule, LRSchedule):
        mult = schedule.multiplier
    elif isinstance(schedule, dict):
        if "multiplier" not in schedule:
            fail("schedule", "a mapping with a 'multiplier' list (as in schedule.json)", sorted(schedule))
        mult = schedule["multiplier"]
    else:
        mult = schedule
    if isinstance(mult, (str, bytes)):
        fail("schedule", "an LRSchedule, a schedule.json mapping or a sequence of multipliers", mult, TypeError)
    try:
        arr = np.asarray(mult, dtype=float)
    except (TypeError, ValueError):
        fail("schedule", "an LRSchedule, a schedule.json mapping or a sequence of multipliers", mult, TypeError)
    if arr.ndim != 1 or arr.size == 0:
        fail("schedule", "a non-empty 1-d sequence of multipliers", arr)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        fail("schedule", "finite non-negative multipliers", arr)
    return _LRLambda(arr)


# --------------------------------------------------------------------------- loss curves
def read_loss_curve(path) -> tuple[np.ndarray, np.ndarray]:
    """``(step, loss)`` from a CSV file with columns ``step`` and ``loss`` (case-insensitive)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"loss-curve file {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: the file is empty (expected columns step, loss)")
        keys = [h.strip().lower() for h in header]
        for col in ("step", "loss"):
            if col not in keys:
                raise ValueError(f"{path}: column {col!r} is missing (header has: {', '.join(header)}); "
                                 f"needed: step, loss")
        js, jl = keys.index("step"), keys.index("loss")
        steps, losses = [], []
        row = 0
        for line_no, rec in enumerate(reader, start=2):
            if not rec or all(not x.strip() for x in rec):
                continue
            row += 1
            vals = []
            for col, j in (("step", js), ("loss", jl)):
                text = rec[j].strip() if j < len(rec) else ""
                try:
                    v = float(text)
                except ValueError:
                    raise ValueError(f"{path}: column {col!r}, row {row} (line {line_no}): "
                                     f"{text!r} is not a number") from None
                if not math.isfinite(v) or v < 0 or (col == "loss" and v == 0):
                    raise ValueError(f"{path}: column {col!r}, row {row} (line {line_no}): value {text!r} must be "
                                     f"finite and {'positive' if col == 'loss' else 'non-negative'}")
                vals.append(v)
            steps.append(vals[0])
            losses.append(vals[1])
    return np.array(steps), np.array(losses)


def fit_loss_curve(step, loss, *, fit_from: float | None = None, loss_floor: float = 0.0):
    """Estimate the theory's ``beta`` from a loss curve of a constant-rate run.

    Fits ``loss - loss_floor ~ c step^{-beta}`` by least squares in log-log
    (:func:`lmech.fits.fit_power_law`) over steps ``>= fit_from`` (default: a tenth of the last
    step, skipping the early transient). An irreducible loss left in the curve biases beta low:
    subtract it with ``loss_floor``. Returns the :class:`lmech.fits.PowerLawFit` (``exponent``
    is beta).
    """
    t = np.asarray(step, dtype=float)
    y = np.asarray(loss, dtype=float)
    if t.ndim != 1 or t.shape != y.shape:
        fail("loss", f"a 1-d array of the same shape as step {t.shape}", y)
    floor = check_real(loss_floor, "loss_floor", lo=0.0)
    lo = float(np.max(t)) / 10.0 if fit_from is None else check_real(fit_from, "fit_from", lo=0.0)
    sel = (t >= max(lo, 1e-300)) & (t > 0)
    if np.any(y[sel] <= floor):
        fail("loss_floor", f"below every loss in the fit window (min loss {y[sel].min():.6g})", floor)
    if sel.sum() < 3:
        fail("step", f"at least 3 points with step >= {lo:g} (the fit window)", int(sel.sum()))
    fitted = fit_power_law(t[sel], y[sel] - floor)
    if not fitted.exponent > 0:
        fail("loss", "decreasing with step in the fit window (fitted exponent <= 0)", fitted.exponent)
    return fitted


@dataclass(frozen=True)
class PredictedExponents:
    """The schedule model's exponents read from ``lmech predict``'s ``prediction.json``.

    ``alpha`` is the fitted eigenvalue decay exponent of the kernel's spectrum on the data
    (``lam_k ~ k^-alpha``) and ``beta = (r - 1) / alpha`` with ``r`` the fitted decay exponent
    of the target's power per mode (``p_k ~ k^-r``): in the power-law model
    (:func:`lmech.theory.schedules.power_law_problem`) ``p_k ~ k^-(alpha beta + 1)``, so the
    target power beyond mode k falls as ``k^-(alpha beta)`` and the loss under gradient flow
    as ``t^-beta``. ``*_modes`` are the fit ranges (first and last mode), ``*_stderr`` the fits'
    standard errors, ``path`` the file read.
    """

    alpha: float
    beta: float
    alpha_stderr: float
    target_power_exponent: float
    target_power_exponent_stderr: float
    alpha_modes: tuple
    target_modes: tuple
    path: str

    def describe(self) -> str:
        return (f"alpha, beta from {self.path}: eigenvalues ~ k^-{self.alpha:.4g} (modes {self.alpha_modes[0]}.."
                f"{self.alpha_modes[1]}, stderr {self.alpha_stderr:.2g}), target power ~ "
                f"k^-{self.target_power_exponent:.4g} (modes {self.target_modes[0]}..{self.target_modes[1]}, "
                f"stderr {self.target_power_exponent_stderr:.2g})")


_FIT_FIELDS = ("eigenvalue_exponent", "eigenvalue_exponent_stderr", "eigenvalue_fit_modes", "target_power_exponent",
               "target_power_exponent_stderr", "target_fit_modes")


def exponents_from_prediction(path) -> PredictedExponents:
    """The capacity and source exponents of ``lmech predict``'s result (see :class:`PredictedExponents`).

    ``path`` is a ``prediction.json`` file or the folder ``lmech predict --out`` wrote it to.
    Raises ValueError naming the file on a missing or unreadable file, a missing or null field
    of ``spectrum_fit`` (a file from an older ``lmech predict``, or a fit that failed), or
    exponents outside the model's range (alpha > 1, beta > 0).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "prediction.json"
    if not p.is_file():
        raise ValueError(f"prediction file {str(p)!r} does not exist (write it with `lmech predict --out DIR`)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"prediction file {str(p)!r} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"prediction file {str(p)!r} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"prediction file {str(p)!r} holds no JSON object (expected lmech predict's prediction.json)")
    fit = data.get("spectrum_fit")
    if not isinstance(fit, dict):
        raise ValueError(f"prediction file {str(p)!r} has no 'spectrum_fit' object (written by an older "
                         "`lmech predict`, or not a prediction file): rerun `lmech predict`")
    for key in _FIT_FIELDS:
        value = fit.get(key)
        if key.endswith("_modes"):
            ok = (isinstance(value, list) and len(value) == 2
                  and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
            want = "a list of two mode numbers"
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            want = "a number"
        if not ok:
            what = "missing" if key not in fit else ("null (the fit failed: too few usable modes)" if value is None
                                                      else f"{value!r}, not {want}")
            raise ValueError(f"prediction file {str(p)!r}: spectrum_fit.{key} is {what}")
    a = float(fit["eigenvalue_exponent"])
    r = float(fit["target_power_exponent"])
    if not a > 1.0:
        raise ValueError(f"prediction file {str(p)!r}: the spectrum decays as k^-{a:.4g} "
                         "(spectrum_fit.eigenvalue_exponent); the schedule model needs a capacity exponent alpha > 1")
    beta = (r - 1.0) / a
    if not beta > 0.0:
        raise ValueError(f"prediction file {str(p)!r}: the target power per mode decays as k^-{r:.4g} "
                         "(spectrum_fit.target_power_exponent), giving source exponent beta = (r - 1) / alpha = "
                         f"{beta:.4g}; the schedule model needs beta > 0 (r > 1)")
    return PredictedExponents(alpha=a, beta=beta, alpha_stderr=float(fit["eigenvalue_exponent_stderr"]),
                              target_power_exponent=r,
                              target_power_exponent_stderr=float(fit["target_power_exponent_stderr"]),
                              alpha_modes=tuple(fit["eigenvalue_fit_modes"]),
                              target_modes=tuple(fit["target_fit_modes"]), path=str(p))
