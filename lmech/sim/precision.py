"""Small networks trained with simulated low precision (fake quantisation, straight-through).

The real system for the functional forms of Kumar, Ankner, Spector et al., "Scaling Laws for
Precision", scaled down to a CPU: a teacher-student regression task where a student MLP with
N parameters is trained on D fresh samples (one pass, Adam, cosine schedule) while its weights
and/or hidden activations are fake-quantised to b bits in every forward pass:

    Q_b(t) = s * clip(round(t / s), -(2^{b-1} - 1), 2^{b-1} - 1),   s = max|t| / (2^{b-1} - 1)

(symmetric, per-tensor, absmax scale), with the straight-through estimator for gradients
(``t + (Q_b(t) - t).detach()``). Post-training quantisation (PTQ) rounds the weights of a
trained model once, without retraining. Nothing here knows the scaling law.

What this simulator does not reproduce (measured for the ``precision.*`` claims)
---------------------------------------------------------------------------------
The precision-aware law ``L = A N_eff^-alpha + B D^-beta + E`` with
``N_eff = N (1 - e^{-P_w/gamma_w}) (1 - e^{-P_a/gamma_a})``, fitted on these runs, does not
predict held-out runs (quick setting, seeds 0, 1, 2: held-out max error 0.118 / 0.142 / 0.168,
no better than a precision-blind Chinchilla fit: held-out mean 0.063 vs 0.051, 0.050 vs 0.036,
0.062 vs 0.053; full setting, seed 0: 0.305, with the joint (w+a) runs missing by 0.30, the
other-D runs by 0.24 and full-precision fit residuals reaching 0.18). Two causes:

1. The runs are not in a Chinchilla regime: one-pass Adam with D/B steps is step-limited, the
   loss against D shows a plateau escape rather than a power law and N and D interact strongly
   (at D = 2048 all widths reach ~0.09), so the additive base leaves +-7-9 % residuals (a
   Chinchilla fit on a 4 x 4 (N, D) grid misses by 15-30 %).
2. With absmax rounding the quantisation error is set by the scale of the whole tensor (the
   function's norm, not its residual) and falls ~4x per bit, while the law's penalty
   ``A N^-alpha (f(P)^-alpha - 1)`` is a constant fraction of the N-limited loss: a large 3-bit
   penalty forces gamma ~ 4-7 bits and the fit over-predicts the 4-6-bit penalties about
   twofold (the joint runs compound it, +3..+14 %). A linear random-feature model with quantised
   readout weights or features, trained to convergence on a fixed set (N = 16..128, D =
   512..8192), fails the same way (held-out max error 0.18, mean 0.081 vs precision-blind 0.096):
   its relative penalty grows with N (3-bit weights: +0.7 % at N = 16, +9 % at 128; 3-bit
   features: +21 % to +146 %). No quantiser we tried acts like removing a fixed fraction of
   parameters without building the law in.

The PTQ form ``delta = C_T e^{-P/gamma_post} D^{gamma_D} / N^{gamma_N}`` fits the smaller data
budgets, but the measured damage can grow faster than a power law in D between the two largest
budgets (width 32, 4 bits: 0.0041 at D = 16384, 0.0142 at 65536, predicted 0.0044), plausibly
because longer one-pass training grows larger weight outliers that inflate the absmax step; at
3 bits and the full budgets it saturates instead (width 128: 0.056 at D = 32768 and 131072).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lmech._validation import check_int, check_real, fail

__all__ = [
    "fake_quantize",
    "QuantMLP",
    "TeacherTask",
    "PrecisionRun",
    "train_low_precision",
    "post_train_quantize_loss",
    "RunTable",
    "seed_mean_losses",
    "ptq_degradations",
]


def _check_bits(bits, name: str):
    if bits is None or (isinstance(bits, float) and math.isinf(bits)):
        return None
    b = check_int(bits, name, lo=2, hi=32)
    return b


def fake_quantize(t: torch.Tensor, bits: int | None) -> torch.Tensor:
    """Symmetric per-tensor absmax quantisation to ``bits`` bits, straight-through gradient.

    ``bits=None`` returns ``t`` unchanged.
    """
    if bits is None:
        return t
    levels = 2 ** (bits - 1) - 1
    scale = t.detach().abs().max().clamp_min(1e-12) / levels
    q = torch.clamp(torch.round(t / scale), -levels, levels) * scale
    return t + (q - t).detach()


class QuantMLP(nn.Module):
    """MLP ``d -> width -> width -> 1`` (tanh) with optional fake-quantised weights/activations.

    Parameters
    ----------
    in_dim, width : int
    weight_bits, act_bits : int or None
        Training precision of all weight matrices / of the hidden activations fed to the next
        layer (None: full float precision).
    """

    def __init__(self, in_dim: int, width: int, *, weight_bits: int | None = None, act_bits: int | None = None):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(in_dim, width), nn.Linear(width, width), nn.Linear(width, 1)])
        self.weight_bits = weight_bits
        self.act_bits = act_bits

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, lin in enumerate(self.layers):
            W = fake_quantize(lin.weight, self.weight_bits)
            h = torch.nn.functional.linear(h, W, lin.bias)
            if i < len(self.layers) - 1:
                h = fake_quantize(torch.tanh(h), self.act_bits)
        return h[:, 0]


class TeacherTask:
    """Regression on a fixed random teacher: ``y = f*(x) + noise``, ``x ~ N(0, I_d)``.

    The teacher is a wide random tanh network whose input directions have power-law weights
    (so that larger students and more data keep helping over several decades).
    """

    def __init__(self, in_dim: int = 16, teacher_width: int = 256, *, noise: float = 0.01, seed: int = 0):
        self.in_dim = check_int(in_dim, "in_dim", lo=1)
        self.teacher_width = check_int(teacher_width, "teacher_width", lo=1)
        self.noise = check_real(noise, "noise", lo=0.0)
        g = torch.Generator().manual_seed(int(seed))
        k = torch.arange(1, self.teacher_width + 1, dtype=torch.float32)
        self.W1 = torch.randn(self.teacher_width, self.in_dim, generator=g) / math.sqrt(self.in_dim) * 1.5
        self.b1 = 0.3 * torch.randn(self.teacher_width, generator=g)
        self.w2 = torch.randn(self.teacher_width, generator=g) * k ** (-0.75)
        self.w2 = self.w2 / self.w2.norm()
        x = torch.randn(20000, self.in_dim, generator=g)
        f = torch.tanh(x @ self.W1.T + self.b1) @ self.w2
        self.mean, self.std = float(f.mean()), float(f.std())

    def target(self, x: torch.Tensor) -> torch.Tensor:
        return ((torch.tanh(x @ self.W1.T + self.b1) @ self.w2) - self.mean) / self.std

    def sample(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, self.in_dim, generator=gen)
        y = self.target(x)
        if self.noise > 0:
            y = y + math.sqrt(self.noise) * torch.randn(n, generator=gen)
        return x, y


@dataclass(frozen=True)
class PrecisionRun:
    """One training run.

    Attributes
    ----------
    width, n_params, n_data : int
    weight_bits, act_bits : float   (inf for full precision)
    loss : float                    test MSE against the noiseless target, plus the noise
                                    variance (so the irreducible loss is ``noise``)
    model : QuantMLP
    """

    width: int
    n_params: int
    n_data: int
    weight_bits: float
    act_bits: float
    loss: float
    model: QuantMLP


def _test_loss(model: nn.Module, task: TeacherTask, n_test: int, seed: int) -> float:
    g = torch.Generator().manual_seed(10_000 + int(seed))
    x = torch.randn(n_test, task.in_dim, generator=g)
    with torch.no_grad():
        err = ((model(x) - task.target(x)) ** 2).mean()
    return float(err) + task.noise


def train_low_precision(
    task: TeacherTask,
    width: int,
    n_data: int,
    *,
    weight_bits: int | None = None,
    act_bits: int | None = None,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    n_test: int = 8192,
) -> PrecisionRun:
    """Train a :class:`QuantMLP` on ``n_data`` fresh samples (one pass) and return its test loss.

    Parameters
    ----------
    task : TeacherTask
    width : int
        Hidden width (the parameter count is ``width^2 + (d + 3) width + 1``).
    n_data : int
        Training samples D (``ceil(D / batch_size)`` Adam steps, cosine-decayed learning rate).
    weight_bits, act_bits : int or None
        Fake-quantisation precision during training.
    """
    w = check_int(width, "width", lo=1)
    D = check_int(n_data, "n_data", lo=1)
    wb = _check_bits(weight_bits, "weight_bits")
    ab = _check_bits(act_bits, "act_bits")
    B = check_int(batch_size, "batch_size", lo=1)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    torch.manual_seed(int(seed))
    model = QuantMLP(task.in_dim, w, weight_bits=wb, act_bits=ab)
    steps = max(1, math.ceil(D / B))
    opt = torch.optim.Adam(model.parameters(), lr=eta)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    gen = torch.Generator().manual_seed(int(seed) + 1)
    for _ in range(steps):
        x, y = task.sample(B, gen)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    test = _test_loss(model, task, n_test, seed)
    if not math.isfinite(test):
        fail("lr", "small enough for training to stay finite", eta)
    return PrecisionRun(width=w, n_params=model.n_params, n_data=D, weight_bits=float(wb or np.inf),
                        act_bits=float(ab or np.inf), loss=test, model=model)


def post_train_quantize_loss(run: PrecisionRun, task: TeacherTask, bits: int, *, n_test: int = 8192,
                             seed: int = 0) -> float:
    """Test loss after rounding every weight matrix of a trained model to ``bits`` bits (PTQ).

    Activations keep the precision the model was trained with; biases stay in float.
    """
    b = check_int(bits, "bits", lo=2, hi=32)
    q = QuantMLP(task.in_dim, run.width, weight_bits=None,
                 act_bits=None if math.isinf(run.act_bits) else int(run.act_bits))
    q.load_state_dict(run.model.state_dict())
    with torch.no_grad():
        for lin in q.layers:
            lin.weight.copy_(fake_quantize(lin.weight, b))
    return _test_loss(q, task, n_test, seed)


@dataclass(frozen=True)
class RunTable:
    """Seed-averaged runs, one entry per configuration (arrays of equal length).

    Attributes
    ----------
    width, n_params, n_data : ndarray of int
    weight_bits, act_bits : ndarray of float
        Training precision (inf = full precision).
    post_bits : ndarray of float
        Post-training precision (inf where no PTQ was applied).
    value : ndarray of float
        Seed-mean test loss (:func:`seed_mean_losses`) or seed-mean loss increase after PTQ
        (:func:`ptq_degradations`).
    """

    width: np.ndarray
    n_params: np.ndarray
    n_data: np.ndarray
    weight_bits: np.ndarray
    act_bits: np.ndarray
    post_bits: np.ndarray
    value: np.ndarray


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)) or len(seeds) == 0:
        fail("seeds", "a non-empty sequence of integer seeds", seeds)
    return [check_int(s, "seeds", lo=0) for s in seeds]


def _quantize_members(t: torch.Tensor, bits: int | None) -> torch.Tensor:
    """:func:`fake_quantize` applied to each ``t[s]`` separately (absmax per member)."""
    if bits is None:
        return t
    levels = 2 ** (bits - 1) - 1
    scale = t.detach().abs().amax(dim=tuple(range(1, t.ndim)), keepdim=True).clamp_min(1e-12) / levels
    q = torch.clamp(torch.round(t / scale), -levels, levels) * scale
    return t + (q - t).detach()


def _train_seeds(task: TeacherTask, width, n_data, weight_bits, act_bits, seeds, batch_size, lr,
                 n_test: int = 8192) -> tuple[int, list[float]]:
    """:func:`train_low_precision` for every seed at once, as one stacked (batched-matmul) model.

    Member s has the initialisation, data stream and test set of ``train_low_precision(..., seed=s)``;
    Adam is elementwise and the summed loss gives each member its own gradient, so the runs are
    the separate runs up to float32 rounding of the batched matmuls. Returns (n_params, losses).
    """
    w = check_int(width, "width", lo=1)
    D = check_int(n_data, "n_data", lo=1)
    wb, ab = _check_bits(weight_bits, "weight_bits"), _check_bits(act_bits, "act_bits")
    B = check_int(batch_size, "batch_size", lo=1)
    eta = check_real(lr, "lr", lo=0.0, lo_closed=False)
    models = []
    for sd in seeds:
        torch.manual_seed(int(sd))
        models.append(QuantMLP(task.in_dim, w, weight_bits=wb, act_bits=ab))
    Ws = [nn.Parameter(torch.stack([m.layers[i].weight.detach() for m in models])) for i in range(3)]
    bs = [nn.Parameter(torch.stack([m.layers[i].bias.detach() for m in models])) for i in range(3)]

    def forward(h):  # h (S, n, d) -> (S, n)
        for i in range(3):
            h = torch.baddbmm(bs[i][:, None, :], h, _quantize_members(Ws[i], wb).transpose(1, 2))
            if i < 2:
                h = _quantize_members(torch.tanh(h), ab)
        return h[..., 0]

    steps = max(1, math.ceil(D / B))
    opt = torch.optim.Adam([p for pair in zip(Ws, bs) for p in pair], lr=eta)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    gens = [torch.Generator().manual_seed(int(sd) + 1) for sd in seeds]
    for _ in range(steps):
        xs, ys = zip(*(task.sample(B, g) for g in gens))
        loss = ((forward(torch.stack(xs)) - torch.stack(ys)) ** 2).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    x = torch.stack([torch.randn(n_test, task.in_dim, generator=torch.Generator().manual_seed(10_000 + int(sd)))
                     for sd in seeds])
    with torch.no_grad():
        losses = [float(e) + task.noise for e in ((forward(x) - task.target(x)) ** 2).mean(1)]
    if not all(math.isfinite(v) for v in losses):
        fail("lr", "small enough for training to stay finite", eta)
    return models[0].n_params, losses


def seed_mean_losses(task: TeacherTask, configs, seeds, *, batch_size: int = 64, lr: float = 3e-3) -> RunTable:
    """Train every ``(width, n_data, weight_bits, act_bits)`` in ``configs`` once per seed
    (:func:`train_low_precision`; ``None`` bits = full precision) and average the test loss.

    Every configuration uses the same ``seeds`` (common random numbers across configurations).
    """
    seeds = _check_seeds(seeds)
    rows = []
    for cfg in configs:
        if len(cfg) != 4:
            fail("configs", "a sequence of (width, n_data, weight_bits, act_bits) tuples", cfg)
        w, D, wb, ab = cfg
        n_params, losses = _train_seeds(task, w, D, wb, ab, seeds, batch_size, lr)
        rows.append((w, n_params, D, float(wb or np.inf), float(ab or np.inf), np.inf, np.mean(losses)))
    if not rows:
        fail("configs", "non-empty", configs)
    return RunTable(*(np.array(c) for c in zip(*rows)))


def ptq_degradations(task: TeacherTask, widths, n_data, bits, seeds, *, batch_size: int = 64,
                     lr: float = 3e-3) -> RunTable:
    """Post-training quantisation damage: for every width and data budget, train in full
    precision once per seed, round the weights to each of ``bits`` (:func:`post_train_quantize_loss`)
    and average ``loss after PTQ - loss before`` over seeds. Rows run over widths, then data
    budgets, then bits."""
    seeds = _check_seeds(seeds)
    bits = [check_int(b, "bits", lo=2, hi=32) for b in bits]
    rows = []
    for w in widths:
        for D in n_data:
            degr = np.zeros((len(seeds), len(bits)))
            for i, s in enumerate(seeds):
                run = train_low_precision(task, w, D, seed=s, batch_size=batch_size, lr=lr)
                degr[i] = [post_train_quantize_loss(run, task, b, seed=s) - run.loss for b in bits]
            rows += [(run.width, run.n_params, run.n_data, np.inf, np.inf, b, degr[:, j].mean())
                     for j, b in enumerate(bits)]
    if not rows:
        fail("widths", "non-empty (and n_data, bits too)", widths)
    return RunTable(*(np.array(c) for c in zip(*rows)))
