"""One hyperparameter-transfer training run: the unit of work of ``lmech transfer``.

``run_trial(TrialConfig(model="mlp", scheme="mup", width=256, depth=4, lr=3e-3))`` builds a
model from :mod:`lmech.models`, initialises it and builds its optimizer groups with a
:class:`lmech.param.Parameterization` relative to ``(base_width, base_depth)``, trains it
for ``steps`` minibatch steps of cross-entropy and returns a :class:`TrialOutcome` (the
training curve, the smoothed final training loss, the held-out loss). It is deterministic
given the config (the seed fixes initialisation and batch order), never raises on
divergence (a NaN/inf loss, or a final loss above the initial one, is reported as
``diverged`` with infinite losses, as in the HP-transfer protocol) and caches data per
process. "The initial loss" is the initial model's loss on the whole held-out set, not the
first minibatch's loss: one minibatch differs from the next by ~0.1 nats, enough to flag a
short, slowly learning run as diverged at random. Configs and outcomes round-trip through
plain dicts (JSON-safe) for the store and for worker processes / Ray tasks.

Tasks: ``mnist1d`` (MNIST-1D generated offline, 3000 train / 1000 held out, 40 features,
10 classes), ``digits`` (scikit-learn 8x8 digits, 1437 / 360) for ``mlp``/``resmlp``;
``text`` (the shipped pydoc corpus, next-character prediction) for ``gpt``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any

from lmech._validation import check_choice, check_int, check_real, fail

__all__ = ["TrialConfig", "TrialOutcome", "run_trial", "build_model", "TASKS", "MODELS"]

MODELS = ("mlp", "resmlp", "gpt")
TASKS = ("mnist1d", "digits", "text")
_DEFAULT_TASK = {"mlp": "mnist1d", "resmlp": "mnist1d", "gpt": "text"}
_SCHEMES = ("sp", "ntp", "mup", "depth_mup", "completep")


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines one training run (hashable, JSON round-trip via ``to_dict``).

    Attributes
    ----------
    model : {"mlp", "resmlp", "gpt"}
    scheme : {"sp", "ntp", "mup", "depth_mup", "completep"}
    width, depth : int
        ``mlp``: number of linear layers; ``resmlp``/``gpt``: number of residual blocks.
    lr : float
        Base learning rate (the value at the base shape; groups rescale it).
    seed : int
        Initialisation and batch order.
    steps, batch_size : int
        Optimizer steps and examples (sequences for ``gpt``) per step.
    base_width, base_depth : int
        Base shape of the parameterization.
    optimizer : {"adamw", "sgd"}
    weight_decay : float
        Coupled AdamW / SGD weight decay at the base shape (see ``Parameterization``).
    task : {"mnist1d", "digits", "text"}, optional
        Default ``mnist1d`` for ``mlp``/``resmlp``, ``text`` for ``gpt``.
    eval_every : int
        Held-out loss every this many steps (0: only at the end).
    seq_len, head_dim : int
        GPT context length and (fixed) head dimension.
    init_std : float
        Base init scale sigma (weights ``sigma / sqrt(base fan-in)``).
    momentum : float
        SGD momentum.
    eps : float
        Adam epsilon at the base shape.
    warmup_steps : int
        Linear learning-rate warm-up (held fixed across shapes, in steps).
    schedule : {"constant", "cosine"}
        Learning-rate schedule after warm-up (cosine decays to 0 at ``steps``).
    n_experts, n_active, expert_width : int
        ``gpt`` only: ``n_experts > 0`` replaces every MLP by a mixture of experts
        (:class:`lmech.models.moe.MoEFeedForward`) with ``n_active`` experts per token and
        hidden width ``expert_width`` (0: the width).
    base_expert_width : int
        Expert width at the base shape (0: ``alpha_ffn`` as at the base, see
        :class:`lmech.param.MoERules`).
    down_init : {"mean_field", "fan_in"}
        Expert down-projection init (:class:`lmech.param.MoERules`).
    moe_sum : bool
        Drop the ``1 / n_active`` prefactor of the mixture (a control).
    """

    model: str
    scheme: str
    width: int
    depth: int
    lr: float
    seed: int = 0
    steps: int = 200
    batch_size: int = 64
    base_width: int = 64
    base_depth: int = 2
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    task: str | None = None
    eval_every: int = 0
    seq_len: int = 64
    head_dim: int = 16
    init_std: float = 1.0
    momentum: float = 0.0
    eps: float = 1e-8
    warmup_steps: int = 0
    schedule: str = "constant"
    n_experts: int = 0
    n_active: int = 1
    expert_width: int = 0
    base_expert_width: int = 0
    down_init: str = "mean_field"
    moe_sum: bool = False

    def __post_init__(self) -> None:
        check_choice(self.model, "model", MODELS)
        check_choice(self.scheme, "scheme", _SCHEMES)
        for name, lo in (("width", 1), ("depth", 1), ("seed", 0), ("steps", 1), ("batch_size", 1),
                         ("base_width", 1), ("base_depth", 1), ("eval_every", 0), ("seq_len", 1),
                         ("head_dim", 1), ("warmup_steps", 0), ("n_experts", 0), ("n_active", 1),
                         ("expert_width", 0), ("base_expert_width", 0)):
            object.__setattr__(self, name, check_int(getattr(self, name), name, lo=lo))
        object.__setattr__(self, "lr", check_real(self.lr, "lr", lo=0.0, lo_closed=False))
        object.__setattr__(self, "weight_decay", check_real(self.weight_decay, "weight_decay", lo=0.0))
        object.__setattr__(self, "init_std", check_real(self.init_std, "init_std", lo=0.0, lo_closed=False))
        object.__setattr__(self, "momentum", check_real(self.momentum, "momentum", lo=0.0, hi=1.0, hi_closed=False))
        object.__setattr__(self, "eps", check_real(self.eps, "eps", lo=0.0))
        check_choice(self.optimizer, "optimizer", ("adamw", "sgd"))
        check_choice(self.schedule, "schedule", ("constant", "cosine"))
        check_choice(self.down_init, "down_init", ("mean_field", "fan_in"))
        if self.n_experts and self.model != "gpt":
            fail("n_experts", "0 unless model is 'gpt'", self.n_experts)
        if not isinstance(self.moe_sum, bool):
            fail("moe_sum", "a bool", self.moe_sum, TypeError)
        if self.moe_sum and not self.n_experts:
            fail("moe_sum", "False unless n_experts > 0", self.moe_sum)
        if self.n_experts and self.n_active > self.n_experts:
            fail("n_active", f"<= n_experts ({self.n_experts})", self.n_active)
        if self.base_width > self.width:
            fail("base_width", f"<= width ({self.width})", self.base_width)
        if self.base_depth > self.depth:
            fail("base_depth", f"<= depth ({self.depth})", self.base_depth)
        if self.model == "mlp" and self.depth < 2:
            fail("depth", "at least 2 for model 'mlp' (input layer and readout)", self.depth)
        if self.task is not None:
            check_choice(self.task, "task", TASKS)
            if (self.task == "text") != (self.model == "gpt"):
                fail("task", f"{'text' if self.model == 'gpt' else 'mnist1d or digits'} for model {self.model!r}",
                     self.task)
        if self.model == "gpt":
            for name in ("width", "base_width"):
                if getattr(self, name) % self.head_dim:
                    fail(name, f"divisible by head_dim={self.head_dim}", getattr(self, name))

    @property
    def resolved_task(self) -> str:
        return self.task if self.task is not None else _DEFAULT_TASK[self.model]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialConfig":
        if not isinstance(d, dict):
            fail("config", "a dict", d, TypeError)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            fail("config", f"a dict with keys among {sorted(known)} (unknown: {unknown})", d)
        return cls(**d)


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _none_to(x: Any, default: float) -> float:
    return default if x is None else float(x)


@dataclass
class TrialOutcome:
    """Result of :func:`run_trial`.

    Attributes
    ----------
    train_curve : list of float
        Training loss at every step (before the step's update); stops early at a NaN/inf.
    final_train_loss : float
        Mean training loss over the last 5% of steps (at least one); ``inf`` if diverged.
    val_loss : float
        Held-out loss after training; ``inf`` if diverged.
    diverged : bool
        A NaN/inf loss occurred, or ``final_train_loss`` exceeds ``initial_loss``.
    seconds : float
        Wall time of the run (data loading excluded).
    n_params : int
    val_curve, val_steps : list
        Held-out loss at ``val_steps`` when ``eval_every > 0``.
    initial_loss : float
        Held-out loss of the initial model (the reference of the divergence test).
    """

    train_curve: list[float]
    final_train_loss: float
    val_loss: float
    diverged: bool
    seconds: float
    n_params: int
    val_curve: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    initial_loss: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite numbers become ``None``)."""
        return {
            "train_curve": [_finite_or_none(v) for v in self.train_curve],
            "final_train_loss": _finite_or_none(self.final_train_loss),
            "val_loss": _finite_or_none(self.val_loss),
            "diverged": bool(self.diverged),
            "seconds": float(self.seconds),
            "n_params": int(self.n_params),
            "val_curve": [_finite_or_none(v) for v in self.val_curve],
            "val_steps": [int(s) for s in self.val_steps],
            "initial_loss": _finite_or_none(self.initial_loss),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrialOutcome":
        return cls(
            train_curve=[_none_to(v, math.nan) for v in d["train_curve"]],
            final_train_loss=_none_to(d["final_train_loss"], math.inf),
            val_loss=_none_to(d["val_loss"], math.inf),
            diverged=bool(d["diverged"]),
            seconds=float(d["seconds"]),
            n_params=int(d["n_params"]),
            val_curve=[_none_to(v, math.inf) for v in d.get("val_curve", [])],
            val_steps=[int(s) for s in d.get("val_steps", [])],
            initial_loss=_none_to(d.get("initial_loss", math.nan), math.inf),
        )


# --------------------------------------------------------------------------- data (cached per process)
@functools.lru_cache(maxsize=4)
def _classification(task: str):
    import numpy as np
    import torch

    from lmech.data.vision import load_digits, load_mnist1d

    if task == "mnist1d":
        ds = load_mnist1d(4000, seed=42)
        n_train = 3000
        order = np.arange(len(ds.y))
    else:
        ds = load_digits()
        n_train = 1437
        order = np.random.default_rng(0).permutation(len(ds.y))
    X = torch.tensor(ds.X[order], dtype=torch.float32)
    y = torch.tensor(ds.y[order], dtype=torch.int64)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], ds.n_classes


@functools.lru_cache(maxsize=2)
def _text():
    import torch

    from lmech.data.text import load_text

    corpus = load_text()
    return torch.tensor(corpus.train), torch.tensor(corpus.val), corpus.vocab_size


def _build(cfg: TrialConfig):
    from lmech.models import GPT, MLP, ResMLP

    task = cfg.resolved_task
    if task == "text":
        _, _, vocab = _text()
        moe = {} if not cfg.n_experts else dict(n_experts=cfg.n_experts, n_active=cfg.n_active,
                                                 expert_width=cfg.expert_width or None)
        model = GPT(vocab, seq_len=cfg.seq_len, width=cfg.width, depth=cfg.depth, head_dim=cfg.head_dim, **moe)
        if cfg.moe_sum:
            for block in model.blocks:
                block.moe.combine_scale = 1.0
        return model
    Xtr, _, _, _, n_classes = _classification(task)
    cls = MLP if cfg.model == "mlp" else ResMLP
    return cls(Xtr.shape[1], n_classes, width=cfg.width, depth=cfg.depth)


# --------------------------------------------------------------------------- the run
def run_trial(config: TrialConfig | dict) -> TrialOutcome:
    """Train one model as described by ``config``; see the module docstring.

    Deterministic for a given config (the run uses its own generator and restores the
    global torch RNG afterwards). Uses the caller's torch thread setting.
    """
    import torch
    import torch.nn.functional as F

    from lmech.param import Parameterization

    cfg = TrialConfig.from_dict(config) if isinstance(config, dict) else config
    if not isinstance(cfg, TrialConfig):
        fail("config", "a TrialConfig or a dict", config, TypeError)
    task = cfg.resolved_task
    if task == "text":
        train_ids, val_ids, _ = _text()
        T = cfg.seq_len
        n_eval = 32
        starts = torch.linspace(0, len(val_ids) - T - 2, n_eval).long()
        val_x = torch.stack([val_ids[s:s + T] for s in starts])
        val_y = torch.stack([val_ids[s + 1:s + T + 1] for s in starts])
    else:
        Xtr, ytr, Xva, yva, _ = _classification(task)

    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model = _build(cfg)
        opt_kind = "sgd" if cfg.optimizer == "sgd" else "adam"
        param = Parameterization(cfg.scheme, base_width=cfg.base_width, base_depth=cfg.base_depth,
                                 optimizer=opt_kind, init_std=cfg.init_std,
                                 moe={"base_expert_width": cfg.base_expert_width or None, "down_init": cfg.down_init})
        param.apply(model, generator=gen)
        groups = param.param_groups(model, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=cfg.eps)
        opt = _optimizer(cfg, groups)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(_lr_factor, cfg=cfg))

        def batch():
            if task == "text":
                s = torch.randint(0, len(train_ids) - T - 1, (cfg.batch_size,), generator=gen)
                idx = s[:, None] + torch.arange(T + 1)
                seq = train_ids[idx]
                return seq[:, :-1], seq[:, 1:]
            i = torch.randint(0, len(ytr), (cfg.batch_size,), generator=gen)
            return Xtr[i], ytr[i]

        def loss_of(x, y):
            out = model(x)
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

        def evaluate() -> float:
            with torch.no_grad():
                v = loss_of(val_x, val_y) if task == "text" else loss_of(Xva, yva)
            return float(v)

        initial = evaluate()
        curve: list[float] = []
        val_curve: list[float] = []
        val_steps: list[int] = []
        blown = False
        for step in range(cfg.steps):
            x, y = batch()
            loss = loss_of(x, y)
            value = float(loss.detach())
            curve.append(value)
            if not math.isfinite(value):
                blown = True
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
                val_curve.append(evaluate())
                val_steps.append(step + 1)
        val = math.inf if blown else evaluate()
        if cfg.eval_every:
            val_curve.append(val)
            val_steps.append(len(curve))
    n_last = max(1, int(math.ceil(0.05 * cfg.steps)))
    final = math.inf if blown else sum(curve[-n_last:]) / n_last
    diverged = blown or not math.isfinite(val) or not math.isfinite(initial) or final > initial
    if diverged:
        final, val = math.inf, math.inf
    return TrialOutcome(
        train_curve=curve, final_train_loss=final, val_loss=val, diverged=diverged,
        seconds=time.perf_counter() - t0, n_params=sum(p.numel() for p in model.parameters()),
        val_curve=val_curve, val_steps=val_steps, initial_loss=initial,
    )


def _optimizer(cfg: TrialConfig, groups: list):
    """Stock optimizer on the groups; the fused CPU kernels (about 4x faster steps) when available."""
    import torch

    cls, kw = (torch.optim.SGD, {"momentum": cfg.momentum}) if cfg.optimizer == "sgd" else (torch.optim.AdamW, {})
    try:
        return cls(groups, lr=cfg.lr, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, lr=cfg.lr, **kw)


def _lr_factor(step: int, *, cfg: TrialConfig) -> float:
    """Schedule factor at ``step`` (linear warm-up, then constant or cosine)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))
    return 1.0


def build_model(config: TrialConfig | dict):
    """The (not yet initialised) model a trial with ``config`` trains, on its task's shapes."""
    cfg = TrialConfig.from_dict(config) if isinstance(config, dict) else config
    if not isinstance(cfg, TrialConfig):
        fail("config", "a TrialConfig or a dict", config, TypeError)
    return _build(cfg)
