"""Monte Carlo (sampling) DMFT of nonlinear mean-field networks: two-layer and deep.

Implements the infinite-width, feature-learning dynamical mean field theory of
"Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide Neural Networks"
(Bordelon & Pehlevan) for the network of :mod:`lmech.sim.mean_field`::

    h^1 = W^0 x / sqrt(D),  h^{l+1} = W^l phi(h^l) / sqrt(N),  f = w . phi(h^L) / (gamma0 N),

trained on the loss ``(1/2P) sum_mu (y_mu - f_mu)^2`` by full-batch gradient descent with
the raw step ``lr * gamma0^2 * N`` on every parameter, in the limit N -> infinity at fixed
``gamma0``, ``lr`` and number of steps.

Order parameters (layer ``l = 1..L``; times ``t, s = 0..T``; points ``mu, nu`` = training
points followed by test points, which carry no loss weight):

* ``Phi^l(t,s) = <phi(h^l(t)) phi(h^l(s))>``, ``G^l(t,s) = <g^l(t) g^l(s)>`` with
  ``Phi^0 = X X^T / D`` and ``G^{L+1} = 1``;
* responses ``A^l(t,s) = <d phi(h^l(t)) / d r^l(s)>`` (strictly causal) and
  ``B^l(t,s) = <d g^l(t) / d u^l(s)>`` (causal, equal time included), ``A^0 = B^{L+1} = 0``;
* the training residual ``Delta(t) = y - f(t)``.

Single-site process of layer ``l`` given the order parameters, solved forward in time::

    h(t) = u(t) + sum_{s<t} [A^{l-1}(t,s) + c Phi^{l-1}(t,s) Delta(s)] g(s)
    z(t) = r(t) + sum_{s<=t} B^{l+1}(t,s) phi(h(s)) + sum_{s<t} c G^{l+1}(t,s) Delta(s) phi(h(s))
    g(t) = phi'(h(t)) z(t),        c = lr * gamma0 / P,

with Gaussian sources ``u ~ GP(0, Phi^{l-1})`` (``u^1`` constant in time) and
``r ~ GP(0, G^{l+1})`` (``r^L = w(0) ~ N(0, 1)`` constant in time), the kernel-Delta products
taken over training points only. The closure of the residual is one of

* ``dynamics="gd"`` (default): exact discrete-time gradient descent at learning rate ``lr``.
  The network output is the neuron average ``f(t) = <z^L(t) phi(h^L(t))> / gamma0``, so the
  exact function increment is ``<psi(t+1) - psi(t)>`` with ``psi = z^L phi(h^L) / gamma0``
  (minus the control variate ``w(0) phi(u^L(t)) / gamma0``, of mean exactly zero). Used
  open-loop this estimate accumulates Monte Carlo noise without damping, so the solver
  closes the loop as ``Delta(t+1) = Delta(t) - (lr/P) K(t) Delta(t) - rho(t)`` with the NTK
  ``K(t) = Phi^L(t,t) + sum_l G^l(t,t) Phi^{l-1}(t,t)`` and the remainder
  ``rho(t) = <psi(t+1) - psi(t)> - (lr/P) K(t) Delta(t)`` (O(lr^2 gamma0), estimated from the
  same samples, damped like the other order parameters). At the fixed point this is exact
  GD. In deep networks ``rho`` also absorbs the Monte Carlo noise of the responses at first
  order, so keep ``response_samples`` comparable to ``samples`` when gamma0 << 1, or use
  ``"flow"`` there (its Euler error vanishes with gamma0).
* ``dynamics="flow"``: gradient flow (time ``lr * t``) discretised by forward Euler with step
  ``lr``: the same recursion with ``rho = 0``; first order in ``lr``.

Both give the same limit as ``lr -> 0``; they differ at O(lr^2 gamma0) per step. For
``gamma0 < 1e-6`` the kernel closure is used (exact for a static kernel).

Algorithm (damped alternating fixed point): start from the static (lazy) kernels of the
t = 0 recursion; each sweep draws fresh sources, solves every layer's process for the
current order parameters, re-estimates them by sample averages and mixes
``X <- (1 - damping) X + damping X_new``. Response functions are computed *pathwise*: the
exact derivative of each sampled trajectory with respect to its own source (forward-mode
tangents of the linearised recursion, propagated in chunks of source directions over
``response_samples`` trajectories), then averaged -- not by Gaussian integration by parts,
whose pseudo-inverse of the near-singular (t, s) covariances is measurably worse than
omitting the responses altogether. Where the plain iteration would diverge (depth >= 2 or
large gamma0) the window of times is grown by ``continuation`` steps at a time, each new
window starting from the converged shorter one (kernels edge-replicated, responses
zero-padded). With fresh samples each sweep the sweep-to-sweep change cannot fall below the
Monte Carlo floor; the floor is estimated every sweep from two independent halves of the
samples, the iteration is declared converged once the change is below ``tol`` or within
``noise_factor`` times that floor, and the reported order parameters are the average of
``average`` further sweeps' estimates. This fresh-sample iteration is the two-layer
``method="iterate"`` and the deep ``sampler="fresh"``.

Deep default (common random numbers, ``sampler="sobol"`` or ``"random"``): the standard-normal
innovations ``xi`` of every source are drawn once per replica (one scrambled Sobol point set, or
i.i.d.) and mapped to the sources by the time-major Cholesky factor of the current kernel,
``u = chol(Phi^{l-1} + eps I) xi_u``, ``r = chol(G^{l+1} + eps I) xi_r`` (``eps = 1e-10``
times the mean diagonal; the factor is continuous in the kernel, unlike an eigen square root
whose column order and signs flip). Each sweep is then a deterministic, continuous map of the
order parameters, so the iteration converges to the exact fixed point of the sample-average
equations (change below ``tol``; no floor, no averaging sweeps). The equations are causal in
time (the source at time t uses the first (t + 1) M innovations only), so the undamped
(``damping = 1``) iteration converges without continuation (measured 15-16 sweeps at 10-40
steps, L = 2, gamma0 = 1.5); should it diverge, it is rerun damped (0.6) over growing windows. Independent replicas give the answer
(their mean) and its standard error (their spread / sqrt(replicas)).

For ``L = 1`` the default is different and much cheaper: with one fixed sample of initial
conditions the fixed point is reached by a single causal pass (``two_layer(method="forward")``,
:mod:`lmech.theory.dmft.particles`), and randomized quasi-Monte Carlo replicas give the answer and
its standard error. Standard errors of the iterations come from independent replicas
(``replicas``) or, for one two-layer iteration, from batch means of the final sweeps.

Layout: this module holds the result type and the public solvers; the pieces live in
:mod:`lmech.theory.dmft._common` (validated problem, residual closure),
:mod:`lmech.theory.dmft.particles` (forward two-layer pass, Sobol points),
:mod:`lmech.theory.dmft.iteration` (damped fixed point, Monte Carlo floor, continuation) over
the typed per-layer states of :mod:`lmech.theory.dmft.state`,
:mod:`lmech.theory.dmft.two_layer_sweeps` and :mod:`lmech.theory.dmft.deep_sweeps` (per-sweep
single-site processes) and :mod:`lmech.theory.dmft.responses` (pathwise response functions);
the nonlinearities come from :data:`lmech.nonlinearities.NONLINEARITIES`, shared with the
simulators.
"""
from __future__ import annotations

import math
import warnings
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from lmech._validation import MAX_SIZE, check_choice, check_int, check_real, fail
from lmech.nonlinearities import NONLINEARITIES
from lmech.results import LmechWarning, SolverResult, warn_not_converged
from lmech.theory.dmft._common import DMFT_ACTIVATIONS, _Problem, _validate
from lmech.theory.dmft.deep_sweeps import _Deep
from lmech.theory.dmft.iteration import _run
from lmech.theory.dmft.particles import two_layer_particles
from lmech.theory.dmft.state import DMFTState
from lmech.theory.dmft.two_layer_sweeps import _TwoLayer

__all__ = ["SamplingDMFTResult", "two_layer", "deep", "DMFT_ACTIVATIONS"]


@dataclass(frozen=True, kw_only=True)
class SamplingDMFTResult(SolverResult):
    """Infinite-width training dynamics of a mean-field network (sampling DMFT).

    Shapes: ``T1 = steps + 1`` time points, ``P`` training and ``P'`` test points,
    ``M = P + P'`` (training points first), ``L = depth``.

    Attributes
    ----------
    steps : ndarray (T1,)
        GD step index ``0..steps``.
    times : ndarray (T1,)
        ``lr * steps``.
    train_loss, test_loss : ndarray (T1,)
        ``(1/2P) sum (y - f)^2`` and its test-set analogue (None without a test set).
    f_train, f_test : ndarray (T1, P), (T1, P')
        Mean predictions (``f(0) = 0`` at infinite width).
    residuals : ndarray (T1, P)
        ``Delta(t) = y - f(t)``.
    ntk : ndarray (T1, M, M) or None
        Equal-time NTK ``Phi^L + sum_l G^l Phi^{l-1}`` (None for :func:`two_layer` with
        ``track_kernels=False``, as are the next two).
    feature_kernels, gradient_kernels : ndarray (T1, L, M, M) or None
        Equal-time ``Phi^l(t,t)`` and ``G^l(t,t)``, l = 1..L at index l-1 (the layout of
        :class:`lmech.sim.mean_field.MeanFieldRun` without its seed axis).
    two_time : dict or None
        Deep solver only: ``"Phi"``, ``"G"`` (two-time kernels) and the pathwise responses
        ``"A"``, ``"B"``, each of shape (L, T1, M, T1, M) (the layout of
        :func:`lmech.theory.dmft.deep_linear.deep_linear`); responses to sources at test
        points vanish, and ``A[L-1]``, ``B[0]`` are unused and zero.
    mc_error : float
        Estimated relative Monte Carlo standard error of the training residual trajectory
        (``||f_train_stderr|| / ||residuals||`` with replicas; else from the spread of the final
        ``average`` sweeps).
    train_loss_stderr, test_loss_stderr, f_train_stderr, f_test_stderr, ntk_stderr,
    feature_kernels_stderr, gradient_kernels_stderr : ndarray or None
        Monte Carlo standard errors of the fields of the same name (same shapes). With
        ``replicas = R >= 2`` (the default of :func:`two_layer`'s forward pass and of
        :func:`deep`): the spread of the R independent replica answers / sqrt(R); the measured
        seed spread was 0.91-1.15x this (two-layer forward) and 0.76-1.63x (deep;
        tests/test_dmft_sampling.py). For a single two-layer iteration (``method="iterate"``,
        ``replicas=1``): batch means of the ``2 * average`` half-sample estimates of the final
        sweeps (measured 0.83-1.26x). None after a divergence and for :func:`deep` with
        ``replicas=1`` (a half-sample estimate measured 1.4-4x below the seed spread there).
    diverged : bool
        True when the predicted dynamics blew up (loss grew past 1e8 times its initial
        value or became non-finite); arrays then hold the last finite iterate.
    """

    steps: np.ndarray
    times: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    f_train: np.ndarray
    f_test: np.ndarray | None
    residuals: np.ndarray
    ntk: np.ndarray | None
    feature_kernels: np.ndarray | None
    gradient_kernels: np.ndarray | None
    two_time: dict | None = None
    gamma0: float
    lr: float
    depth: int
    activation: str
    dynamics: str
    samples: int
    mc_error: float
    diverged: bool = False
    train_loss_stderr: np.ndarray | None = None
    test_loss_stderr: np.ndarray | None = None
    f_train_stderr: np.ndarray | None = None
    f_test_stderr: np.ndarray | None = None
    ntk_stderr: np.ndarray | None = None
    feature_kernels_stderr: np.ndarray | None = None
    gradient_kernels_stderr: np.ndarray | None = None


def _block_stderr(pb: _Problem, solver, blocks: list[DMFTState]) -> dict:
    """Batch-means standard errors of the reported fields from independent block states."""
    if len(blocks) < 2:
        return {}
    y = pb.y.numpy()
    cols: dict[str, list] = {k: [] for k in ("train_loss", "test_loss", "f_train", "f_test", "ntk",
                                             "feature_kernels", "gradient_kernels")}
    for b in blocks:
        assert b.delta is not None and b.ftest is not None
        delta = b.delta.numpy()
        ntk, Phi, G = solver.result_kernels(b)
        cols["f_train"].append(y - delta)
        cols["train_loss"].append(0.5 * np.mean(delta**2, axis=-1))
        cols["ntk"].append(ntk.numpy())
        cols["feature_kernels"].append(Phi.numpy())
        cols["gradient_kernels"].append(G.numpy())
        if pb.y_test is not None:
            f_test = b.ftest.numpy()
            cols["f_test"].append(f_test)
            cols["test_loss"].append(0.5 * np.mean((pb.y_test.numpy() - f_test) ** 2, axis=-1))
    n = len(blocks)
    return {f"{k}_stderr": np.std(v, axis=0, ddof=1) / math.sqrt(n) for k, v in cols.items() if v}


def _status(where, converged, diverged, residual, floor, tol, total):
    if diverged:
        msg = (f"the iteration diverged after {total} sweeps (non-finite or exploding residual); "
               "try a smaller continuation chunk, more damping or a smaller lr")
    elif converged:
        msg = (f"converged after {total} sweeps: change {residual:.2e} "
               f"(tol {tol:.1e}, Monte Carlo floor {floor:.1e})")
    else:
        msg = (f"not converged after {total} sweeps: change {residual:.2e} above tol {tol:.1e} "
               f"and the Monte Carlo floor {floor:.1e}; raise max_sweeps or lower damping")
    if not converged:
        warn_not_converged(where, msg)
    return msg


def _replica_seeds(seed: int, R: int) -> list[int]:
    """``seed`` itself for one replica, else R independent seeds spawned from it."""
    if R == 1:
        return [seed]
    return [int(x) for x in np.random.SeedSequence(seed).generate_state(R, np.uint64) >> np.uint64(1)]


def _fields(pb: _Problem, delta: torch.Tensor, ftest: torch.Tensor | None, ntk, Phi, G) -> dict:
    """The reported arrays of one solution (numpy; ``Phi``/``G`` with the layer axis)."""
    d = delta.numpy()
    out = {"residuals": d, "train_loss": 0.5 * np.mean(d**2, axis=-1), "f_train": pb.y.numpy() - d}
    if ntk is not None:
        out.update(ntk=ntk.numpy(), feature_kernels=Phi.numpy(), gradient_kernels=G.numpy())
    if pb.y_test is not None and ftest is not None:
        f = ftest.numpy()
        out["f_test"] = f
        out["test_loss"] = 0.5 * np.mean((pb.y_test.numpy() - f) ** 2, axis=-1)
    return out


def _combine(pb: _Problem, reps: list[dict] | dict) -> tuple[dict, dict, float]:
    """Mean of independent replica solutions and its standard errors (replica std / sqrt(R)).

    ``reps``: one field dict per replica, or one dict of fields stacked on a leading replica
    axis. The losses are recomputed from the mean residual and test predictions; their standard
    errors are those of the replica losses. Returns (fields, stderr fields, relative error of
    the residual trajectory)."""
    stacked = reps if isinstance(reps, dict) else {k: np.stack([r[k] for r in reps]) for k in reps[0]}
    R = len(stacked["residuals"])
    mean = {k: v.mean(0) for k, v in stacked.items() if k not in ("train_loss", "test_loss")}
    mean["train_loss"] = 0.5 * np.mean(mean["residuals"] ** 2, axis=-1)
    if "f_test" in mean and pb.y_test is not None:
        mean["test_loss"] = 0.5 * np.mean((pb.y_test.numpy() - mean["f_test"]) ** 2, axis=-1)
    se: dict = {}
    mc = float("nan")
    if R >= 2:
        se = {f"{k}_stderr": stacked[k].std(0, ddof=1) / math.sqrt(R)
              for k in ("train_loss", "test_loss", "f_train", "f_test", "ntk", "feature_kernels", "gradient_kernels")
              if k in stacked}
        mc = float(np.linalg.norm(se["f_train_stderr"]) / max(float(np.linalg.norm(mean["residuals"])), 1e-300))
    return mean, se, mc


def _result(pb: _Problem, *, fields: dict, stderr: dict, mc: float, converged: bool, diverged: bool, status,
            iterations: int, residual: float, message: str, samples: int, extras: dict,
            two_time=None) -> "SamplingDMFTResult":
    T1 = fields["residuals"].shape[0]
    steps = np.arange(T1, dtype=np.int64)
    return SamplingDMFTResult(
        converged=converged, status=status, iterations=iterations, residual=residual, message=message,
        extras=extras, steps=steps, times=pb.lr * steps.astype(np.float64), train_loss=fields["train_loss"],
        test_loss=fields.get("test_loss"), f_train=fields["f_train"], f_test=fields.get("f_test"),
        residuals=fields["residuals"], ntk=fields.get("ntk"), feature_kernels=fields.get("feature_kernels"),
        gradient_kernels=fields.get("gradient_kernels"), two_time=two_time, gamma0=pb.gamma0, lr=pb.lr,
        depth=pb.depth, activation=pb.activation, dynamics=pb.dynamics, samples=samples, mc_error=mc,
        diverged=diverged, **({} if diverged else stderr),
    )


def _iterate_result(pb: _Problem, solver, outs: list, samples: int, tol: float, where: str, extras=None,
                    two_time=None) -> "SamplingDMFTResult":
    """Result of ``R = len(outs)`` independent damped iterations (replicas): their mean, with
    standard errors from their spread when R >= 2, else from the final sweeps' half-sample
    batch means (two-layer only)."""
    diverged = any(o[5] for o in outs)
    converged = all(o[4] for o in outs) and not diverged
    total = sum(o[1] for o in outs)
    residual = max(o[2] for o in outs)
    floor = max(o[3] for o in outs)
    msg = _status(where, converged, diverged, residual, floor, tol, total)
    reps = []
    for o in outs:
        ntk, Phi, G = solver.result_kernels(o[0])
        reps.append(_fields(pb, o[0].delta, o[0].ftest, ntk, Phi, G))
    fields, se, mc = _combine(pb, reps)
    if len(outs) > 1:  # the NTK of the mean kernels (the identity K = Phi^L + sum G^l Phi^(l-1) holds)
        Phi, G = fields["feature_kernels"], fields["gradient_kernels"]
        prev = np.broadcast_to(pb.Kx.numpy(), Phi[:, 0].shape)
        K = Phi[:, -1].copy()
        for l in range(pb.depth):
            K = K + G[:, l] * prev
            prev = Phi[:, l]
        fields["ntk"] = K
    if len(outs) == 1:
        mc = outs[0][6]
        se = _block_stderr(pb, solver, outs[0][8]) if isinstance(solver, _TwoLayer) else {}
    return _result(pb, fields=fields, stderr=se, mc=mc, converged=converged,
                   diverged=diverged, status="diverged" if diverged else None, iterations=total,
                   residual=residual, message=msg, samples=samples, two_time=two_time,
                   extras={"history": [o[7] for o in outs] if len(outs) > 1 else outs[0][7], "mc_floor": floor,
                           "replicas": len(outs), **(extras or {})})


def two_layer(
    X,
    y,
    *,
    gamma0: float,
    lr: float,
    steps: int,
    activation: str = "tanh",
    X_test=None,
    y_test=None,
    dynamics: str = "gd",
    samples: int = 16384,
    method: str = "forward",
    sampler: str = "sobol",
    replicas: int | None = None,
    precision: str = "float64",
    damping: float = 0.7,
    tol: float = 1e-4,
    max_sweeps: int = 60,
    average: int = 6,
    noise_factor: float = 2.0,
    continuation: int | None = None,
    sweeps_per_window: int = 5,
    seed: int = 0,
    progress: bool = False,
    track_kernels: bool = True,
) -> SamplingDMFTResult:
    """Infinite-width feature-learning dynamics of a two-layer mean-field network.

    Equation (eq:dmft.single_site): ``h(t) = u(t) + sum_{s<t} [A^{l-1}(t,s) + c Phi^{l-1}(t,s) Delta(s)] g(s),
        z(t) = r(t) + sum_{s<=t} B^{l+1}(t,s) phi(h(s)) + sum_{s<t} c G^{l+1}(t,s) Delta(s) phi(h(s)),
        g(t) = phi'(h(t)) z(t),  c = lr gamma0 / P``

    Equation (eq:dmft.residual): ``Delta(t+1) = Delta(t) - (lr/P) K(t) Delta(t) - rho(t),
        K(t) = Phi^L(t,t) + sum_l G^l(t,t) Phi^{l-1}(t,t)``

    Solves the DMFT of "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide
    Neural Networks" (Bordelon & Pehlevan) for ``L = 1``: every sampled neuron follows

        h(t+1) = h(t) + (lr gamma0 / P) sum_nu Kx[:, nu] Delta_nu(t) phi'(h_nu(t)) z(t),
        z(t+1) = z(t) + (lr gamma0 / P) sum_nu Delta_nu(t) phi(h_nu(t)),

    from ``(h(0), z(0)) ~ N(0, Kx) x N(0, 1)`` with ``Kx = X X^T / D`` on training and test
    points, and the residual closes the loop (module docstring: ``dynamics`` = "gd" exact
    discrete GD, "flow" Euler gradient flow). No response functions appear at ``L = 1``.

    Two methods. ``"forward"`` (default): one causal pass over a fixed set of initial conditions
    (:mod:`lmech.theory.dmft.particles`) -- randomized quasi-Monte Carlo over ``replicas``
    independently scrambled Sobol sets, answer their mean, standard errors their spread /
    sqrt(replicas). ``"iterate"``: the damped fixed point with fresh i.i.d. samples every sweep
    (module docstring), standard errors from batch means of the final sweeps (``replicas = 1``) or
    from ``replicas`` independent iterations of ``samples // replicas`` each.

    Parameters
    ----------
    X : array (P, D); y : array (P,)
        Training set (the input kernel is ``X X^T / D``).
    gamma0 : float
        Richness, >= 0 (0 is the static-NTK limit).
    lr : float
        Learning rate of :func:`lmech.sim.mean_field.train_mean_field` (the Euler step for
        ``dynamics="flow"``).
    steps : int
        Number of GD steps; the result has ``steps + 1`` time points.
    activation : {"tanh", "erf", "relu", "linear"}
    X_test, y_test : arrays (P', D), (P',), optional
        Points whose predictions and kernels are tracked (no loss weight).
    dynamics : {"gd", "flow"}
    samples : int
        ``"forward"``: particles in all, ``samples // replicas`` per replica (powers of two suit
        Sobol sets). ``"iterate"``: neurons per sweep of each replica.
    method : {"forward", "iterate"}
    sampler : {"sobol", "random"}
        ``"forward"`` only: scrambled Sobol points or i.i.d. normals.
    replicas : int or None
        Independent replicas whose spread gives the standard errors: default 8 for
        ``"forward"`` (>= 2), 1 for ``"iterate"`` (then batch-means standard errors of the final
        sweeps, measured 0.83-1.26x the seed spread; each further replica costs a full solve).
    precision : {"float64", "float32"}
        ``"forward"`` only: arithmetic of the pass (results are float64). float32 is ~2x faster
        and measured to change the residual by < 1e-7 relative at 4096-16384 particles, far
        below the quadrature error; float64 is the default.
    damping : float in (0, 1]
        ``"iterate"`` only (as are the next five parameters): mixing ``beta`` of the damped
        fixed point.
    tol, max_sweeps, average, noise_factor :
        Stop when the relative change per sweep is <= ``tol`` or <= ``noise_factor`` x the
        estimated Monte Carlo floor; at most ``max_sweeps``; then average ``average`` sweeps.
    continuation : int or None
        Grow the time window by this many steps at a time (None: whole window at once; a
        divergent plain iteration is retried with ``max(5, steps // 8)``).
    sweeps_per_window : int
        Sweeps per intermediate window of the continuation.
    seed : int
        Seed of the Monte Carlo draws.
    progress : bool
        tqdm progress bar over sweeps.
    track_kernels : bool
        Return the equal-time kernels (default). False, like
        :func:`lmech.sim.mean_field.train_mean_field`'s option of that name, leaves ``ntk``,
        ``feature_kernels`` and ``gradient_kernels`` None; the forward pass then skips them
        altogether (about 0.6x the time at 1024 particles, P = 8, 100 steps).

    Returns
    -------
    SamplingDMFTResult
        With equal-time kernels only (``two_time`` is None).

    Notes
    -----
    Cost (M = P + P'): O(samples * (steps + 1) * M * (M + P)) time per pass ("forward") or per
    sweep ("iterate"), O(samples * M + replicas * steps * M^2) memory. Fitted on one core
    (bench/dmft.py --quick, forward pass, no test points): time ~ samples^0.99 (4096-32768)
    x steps^0.80 (25-200) x P^1.03 (4-32); ~0.12 s for P = 8, 50 steps, 16384 particles.
    Accuracy (bench/dmft.py: rms relative error of the residual trajectory, P = 8,
    steps = 100, gamma0 = 1.5, 2 replicas): forward Sobol ~ samples^-0.79 (0.74% at 1024,
    0.31% at 4096, 0.084% at 16384 particles), forward i.i.d. ~ samples^-0.66 (1.8%, 0.86%,
    0.29%); "iterate" ~ samples^-0.41 per sweep (0.68%, 0.48%, 0.22%, at 13x the time of the
    forward pass at equal samples). At equal error the forward Sobol pass is ~40x faster than the
    iteration. float32 gives the same errors (to 1e-7) in ~0.5x the time.
    """
    pb = _validate(X, y, X_test, y_test, depth=1, gamma0=gamma0, lr=lr, steps=steps, activation=activation,
                   dynamics=dynamics, samples=samples, damping=damping, tol=tol, max_sweeps=max_sweeps,
                   average=average, noise_factor=noise_factor, seed=seed)
    check_choice(method, "method", ("forward", "iterate"))
    check_choice(sampler, "sampler", ("sobol", "random"))
    check_choice(precision, "precision", ("float64", "float32"))
    if not isinstance(track_kernels, (bool, np.bool_)):
        fail("track_kernels", "a bool", track_kernels, TypeError)
    seed = int(seed)  # validated above: integral floats such as 0.0 are accepted, like every size
    samples = int(samples)
    if replicas is None:
        replicas = 8 if method == "forward" else 1
    R = check_int(replicas, "replicas", lo=2 if method == "forward" else 1, hi=max(samples // 8, 2))
    if method == "forward":
        return _forward_two_layer(pb, samples, R, sampler, precision, seed, bool(track_kernels))
    chunk = None if continuation is None else check_int(continuation, "continuation", lo=1)
    spw = check_int(sweeps_per_window, "sweeps_per_window", lo=1)
    kw = dict(damping=damping, tol=tol, max_sweeps=max_sweeps, average=average, noise_factor=noise_factor,
              sweeps_per_window=spw, progress=progress, where="dmft.two_layer")
    seeds = _replica_seeds(seed, R)
    outs = []
    for sd in seeds:
        solver = _TwoLayer(pb, samples, torch.Generator().manual_seed(sd))
        out = _run(solver, pb, chunk=chunk, **kw)
        if out[5] and chunk is None:  # diverged: retry with time continuation
            solver = _TwoLayer(pb, samples, torch.Generator().manual_seed(sd))
            out = _run(solver, pb, chunk=max(5, pb.steps // 8), **kw)
        outs.append(out)
    res = _iterate_result(pb, solver, outs, samples, tol, "dmft.two_layer")
    if track_kernels:
        return res
    return dataclasses.replace(res, ntk=None, feature_kernels=None, gradient_kernels=None, ntk_stderr=None,
                               feature_kernels_stderr=None, gradient_kernels_stderr=None)


def _forward_two_layer(pb: _Problem, samples: int, R: int, sampler: str, precision: str, seed: int,
                       kernels: bool = True):
    dt = torch.float64 if precision == "float64" else torch.float32
    path = two_layer_particles(pb.Kx.to(dt), pb.y.to(dt), P=pb.P, gamma0=pb.gamma0, lr=pb.lr, steps=pb.steps,
                               nonlinearity=NONLINEARITIES[pb.activation], dynamics=pb.dynamics, samples=samples,
                               replicas=R, sampler=sampler, seed=seed, kernels=kernels)
    delta, ftest = path.delta.double(), path.ftest.double()
    if path.ntk is None or path.Phi is None or path.G is None:
        reps = _fields(pb, delta, ftest, None, None, None)  # every field with a leading replica axis
    else:
        reps = _fields(pb, delta, ftest, path.ntk.double(), path.Phi.double()[:, :, None], path.G.double()[:, :, None])
    fields, se, mc = _combine(pb, reps)
    diverged = path.blown is not None
    n = samples // R
    if diverged:
        msg = (f"the dynamics blew up at step {path.blown} (non-finite or exploding residual); "
               "arrays hold the last finite iterate from there on; try a smaller lr")
        warn_not_converged("dmft.two_layer", msg)
    else:
        msg = (f"forward pass over {R} x {n} {sampler} particles (exact recursion; "
               f"Monte Carlo error {mc:.1e} relative)")
    return _result(pb, fields=fields, stderr=se, mc=mc, converged=not diverged, diverged=diverged,
                   status="diverged" if diverged else "closed_form", iterations=pb.steps,
                   residual=mc, message=msg, samples=samples,
                   extras={"method": "forward", "sampler": sampler, "replicas": R, "precision": precision})


def deep(
    X,
    y,
    *,
    depth: int,
    gamma0: float,
    lr: float,
    steps: int,
    activation: str = "tanh",
    X_test=None,
    y_test=None,
    dynamics: str = "gd",
    samples: int = 1024,
    response_samples: int = 256,
    responses: bool = True,
    replicas: int = 4,
    damping: float | None = None,
    tol: float = 1e-4,
    max_sweeps: int = 40,
    average: int = 6,
    noise_factor: float = 2.0,
    continuation: int | str | None = "auto",
    sweeps_per_window: int = 5,
    jacobian_memory: float = 3.2e7,
    sampler: str = "sobol",
    seed: int = 0,
    progress: bool = False,
) -> SamplingDMFTResult:
    """Infinite-width feature-learning dynamics of a deep mean-field network (sampling DMFT).

    Solves the DMFT of "Self-Consistent Dynamical Field Theory of Kernel Evolution in Wide
    Neural Networks" (Bordelon & Pehlevan) for ``L = depth`` hidden layers with two-time
    kernels ``Phi^l(t,s)``, ``G^l(t,s)`` and pathwise response functions ``A^l``, ``B^l``
    (equations and closures in the module docstring). ``depth = 1`` runs the same general
    code (useful as a cross-check of :func:`two_layer`, which is much cheaper there).

    Parameters
    ----------
    X, y, gamma0, lr, steps, activation, X_test, y_test, dynamics, tol,
    max_sweeps, noise_factor, sweeps_per_window, seed, progress :
        As in :func:`two_layer`.
    depth : int
        Number of hidden layers ``L >= 1``.
    samples : int
        Single-site trajectories per layer and replica (powers of two suit the Sobol sampler).
    response_samples : int
        Trajectories (a subset of ``samples``) whose exact per-sample derivatives are
        averaged into ``A`` and ``B``. The responses enter the fields at O(lr gamma0), so
        fewer samples suffice than for the kernels.
    sampler : {"sobol", "random", "fresh"}
        "sobol" (default) / "random": common random numbers, innovations drawn once per
        replica as scrambled Sobol points / i.i.d. normals (module docstring). "fresh": the
        fresh-sample damped iteration with its Monte Carlo floor and final averaging. Measured
        (bench/dmft.py, L = 2, P = 4, 10 steps, 4 replicas, one core): "fresh" with 4000
        samples reached a relative residual error 0.0040 in 11.4 s; "sobol" reached 0.0032 with
        1024 samples in 2.3 s, 0.0025 with 2048 in 4.1 s, 0.0020 with 4000 in 8.0 s (errors
        against an 8 x 8000-sample reference whose own error is 0.0011), i.e. error ~
        samples^-0.4 and time ~ samples^0.9 there; 15 sweeps per replica. At 1024 samples
        i.i.d. innovations ("random") measured 0.0064 (Sobol 0.0032); response_samples 128 /
        256 / 512 measured 0.0034 / 0.0032 / 0.0030 in 1.6 / 2.4 / 3.9 s.
    damping : float in (0, 1] or None
        Mixing weight of the new estimate; None: 1 (undamped) with fixed innovations, 0.6
        with ``sampler="fresh"``.
    average : int
        As in :func:`two_layer`; used by ``sampler="fresh"`` only.
    responses : bool
        False drops ``A`` and ``B`` (the "gradient independence" ansatz; wrong at finite
        gamma0, kept for comparisons).
    replicas : int
        Independent damped iterations with their own seeds, each with ``samples`` and
        ``response_samples`` (cost proportional to ``replicas``); the answer is their mean and
        the standard errors their spread / sqrt(replicas): the spread over seeds measured
        0.76-1.27x the stated error (tests/test_dmft_sampling.py) and 0.86-1.63x at P = 4,
        8 steps, 4000 samples (6 seeds; the ratio itself is uncertain by ~30% there).
        With the default Sobol innovations the ratio measured 0.79-1.38 (10 seeds, 4 replicas
        of 400 samples; i.i.d. innovations 0.86-1.26).
        ``replicas = 1``: no standard errors (None), because the noise left in a single fixed
        point is not visible in its final sweeps (a half-sample estimate measured 1.4-4x
        low). Splitting a fixed sample budget among replicas is not offered: with fewer
        samples per iteration the noise-floor stopping rule stops earlier, measured to shift
        the final loss by up to 3%.
    continuation : int, "auto" or None
        Time-window growth in steps; "auto" uses the whole window with fixed innovations and
        for depth 1 (growing windows of ``max(5, steps // 8)`` / 2 steps, damped, if that
        diverges) and ``max(5, steps // 8)`` for depth >= 2 with ``sampler="fresh"``; None
        never continues.
    jacobian_memory : float
        Bytes allowed for one chunk of response tangents (the Jacobian is computed in chunks
        of source directions so memory stays bounded).

    Returns
    -------
    SamplingDMFTResult
        With ``two_time`` holding the two-time kernels and the responses.

    Notes
    -----
    With ``T1 = steps + 1``, ``M = P + P'`` and ``S = samples``, ``Sr = response_samples``,
    per sweep and layer: kernels and sources O(S (T1 M)^2 + (T1 M)^3) time (Cholesky, or eigh
    for ``sampler="fresh"``, of the (T1 M) x (T1 M) covariance), forward solve O(S T1^2 M P); pathwise responses
    O(Sr T1^3 M P^2) time. Memory: O(L (T1 M)^2) for the order parameters, O(S T1 M) for
    the trajectories and ``jacobian_memory`` for the tangents. Example (one core): L = 2,
    P = 4, P' = 4, steps = 40, S = 4000, Sr = 1000: ~1-2 s per sweep. Fitted per sweep and
    replica (bench/dmft.py --quick, L = 2, fixed Sobol innovations): steps^1.45 (5-20), P^0.95 (2-8), samples^1.03
    (1000-8000 with Sr = S/4); about 70% of a sweep is the pathwise responses. Total cost is
    that times sweeps (with fixed innovations 15-16 to tol = 1e-4 at 10, 20 and 40 steps,
    L = 2, gamma0 = 1.5; 20-40 for ``sampler="fresh"`` with continuation) times ``replicas``.
    """
    check_choice(sampler, "sampler", ("sobol", "random", "fresh"))
    fixed = sampler != "fresh"
    if damping is None:
        damping = 1.0 if fixed else 0.6
    pb = _validate(X, y, X_test, y_test, depth=depth, gamma0=gamma0, lr=lr, steps=steps,
                   activation=activation, dynamics=dynamics, samples=samples, damping=damping, tol=tol,
                   max_sweeps=max_sweeps, average=average, noise_factor=noise_factor, seed=seed)
    Sr = check_int(response_samples, "response_samples", lo=2, hi=MAX_SIZE)
    seed, samples = int(seed), int(samples)  # validated: integral floats accepted
    spw = check_int(sweeps_per_window, "sweeps_per_window", lo=1)
    mem = check_real(jacobian_memory, "jacobian_memory", lo=0.0, lo_closed=False)
    if not isinstance(responses, bool):
        fail("responses", "a bool", responses, TypeError)
    if not responses:
        # the exact-GD remainder compares field and kernel increments, which agree only
        # with the responses; without them only the kernel (flow) closure is meaningful
        pb.dynamics = "flow"
    if continuation == "auto":
        chunk = None if pb.depth == 1 or fixed else max(5, pb.steps // 8)
    elif continuation is None:
        chunk = None
    else:
        chunk = check_int(continuation, "continuation", lo=1)
    if pb.depth > 1 and responses and not DMFT_ACTIVATIONS[activation][3]:
        warnings.warn(
            f"activation {activation!r} has a non-smooth derivative: pathwise responses B miss its "
            "Dirac-delta second derivative, so depth >= 2 results are approximate", LmechWarning,
            stacklevel=2)

    R = check_int(replicas, "replicas", lo=1, hi=10**4)
    seeds = _replica_seeds(seed, R)
    kw = dict(damping=damping, tol=tol, max_sweeps=max_sweeps, average=average, noise_factor=noise_factor,
              sweeps_per_window=spw, progress=progress, where="dmft.deep")
    outs, two_time = [], []
    L, M, P = pb.depth, pb.M, pb.P
    for sd in seeds:
        def make(sd=sd):
            return _Deep(pb, samples, Sr, responses, mem, torch.Generator().manual_seed(sd),
                         sampler=None if sampler == "fresh" else sampler, seed=sd)

        solver = make()
        out = _run(solver, pb, chunk=chunk, **kw)
        if out[5] and continuation == "auto":
            # fall back to a damped iteration over growing windows
            solver = make()
            out = _run(solver, pb, chunk=max(2, (chunk or max(5, pb.steps // 8)) // 2),
                       **{**kw, "damping": min(damping, 0.6)})
        outs.append(out)
        if out[5]:
            continue
        layers = out[0].layers
        T1 = layers[0].Phi.shape[0] // M

        def full(R, T1=T1):
            out = torch.zeros(T1, M, T1, M, dtype=torch.float64)
            if R is not None:
                out[..., :P] = R
            return out

        two_time.append({
            "Phi": torch.stack([ly.Phi.reshape(T1, M, T1, M) for ly in layers]).numpy(),
            "G": torch.stack([ly.G.reshape(T1, M, T1, M) for ly in layers]).numpy(),
            "A": torch.stack([full(ly.A) for ly in layers]).numpy(),
            "B": torch.stack([full(ly.B) for ly in layers]).numpy(),
        })
    tt = None if len(two_time) < R else {k: np.mean([d[k] for d in two_time], axis=0) for k in two_time[0]}
    res = _iterate_result(pb, solver, outs, samples, tol, "dmft.deep", extras={"continuation": chunk},
                          two_time=tt)
    return res
