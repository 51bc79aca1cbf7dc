"""``lmech schedule``: the theory's optimal learning-rate schedule for a power-law model.

Exit status: 0 when the optimal-control solve converged, 1 when not (results still written), 2
on a usage error. Writes ``schedule.json`` (step, lr, multiplier, predicted final losses) and
``schedule.png``. Importing this module imports neither torch nor the solvers.
"""
from __future__ import annotations

import argparse
import json

from lmech import _argtypes as argtypes

__all__ = ["add_parser"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "schedule",
        help="optimal learning-rate schedule of the power-law theory, vs constant/cosine/WSD",
        description="Optimal learning-rate schedule (optimal control of online SGD on a power-law random-feature "
        "model, 'Theory of Optimal Learning Rate Schedules and Scaling Laws for a Random Feature Model') for "
        "capacity exponent --alpha (feature eigenvalues ~ k^-alpha) and source exponent --beta (loss under "
        "gradient flow ~ t^-beta), a horizon and a batch size; its predicted final loss is printed beside tuned "
        "constant, cosine and warmup-stable-decay schedules. --from-loss-curve estimates beta from a loss curve "
        "of a constant-rate run instead: a least-squares fit of log(loss - floor) against log(step) over steps "
        ">= --fit-from (default a tenth of the last step) gives the slope -beta; alpha cannot be read off a loss "
        "curve and is still taken from --alpha. --from-prediction takes both exponents from `lmech predict`'s "
        "prediction.json (or its folder): alpha is the fitted decay of the kernel's eigenvalues on your data "
        "(lam_k ~ k^-alpha) and beta = (r - 1)/alpha with r the fitted decay of the target's power per mode "
        "(p_k ~ k^-r), as in the model. Use the schedule in torch with "
        "LambdaLR(optimizer, lmech.scaling.as_lr_lambda(json.load(open('schedule.json')))) and the optimizer's "
        "lr set to --lr-max.",
    )
    p.add_argument("--alpha", type=argtypes.positive_float, default=None,
                   help="capacity exponent (> 1); required unless --from-prediction")
    p.add_argument("--beta", type=argtypes.positive_float, default=None,
                   help="source exponent (> 0); required unless --from-loss-curve or --from-prediction")
    p.add_argument("--steps", type=argtypes.positive_int, default=None,
                   help="horizon in optimizer steps (>= 10); default with --from-loss-curve: its last step")
    p.add_argument("--batch-size", type=argtypes.positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--lr-max", type=argtypes.positive_float, default=None,
                   help="your peak learning rate; exported lr = lr_max * multiplier (default: the model's units)")
    p.add_argument("--noise", type=float, default=0.0, help="label-noise variance of the model (default 0)")
    p.add_argument("--from-loss-curve", metavar="CSV", default=None,
                   help="CSV with columns step, loss of a constant-rate run: fit beta from it (see above)")
    p.add_argument("--from-prediction", metavar="JSON", default=None,
                   help="prediction.json of `lmech predict` (or its folder): alpha and beta from its fitted spectrum")
    p.add_argument("--fit-from", type=float, default=None, help="first step of the loss-curve fit window")
    p.add_argument("--loss-floor", type=float, default=0.0,
                   help="irreducible loss subtracted before the loss-curve fit (default 0)")
    p.add_argument("--model-steps", type=argtypes.positive_int, default=None,
                   help="horizon of the control problem (default min(steps, 1000)); the shape is resampled")
    p.add_argument("--n-modes", type=argtypes.positive_int, default=400, help="feature modes of the model (default 400)")
    p.add_argument("--out", default="runs/schedule", help="output folder (default runs/schedule)")
    p.add_argument("--no-plot", action="store_true", help="write only schedule.json")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    from lmech._errors import UsageError
    from lmech.scaling import exponents_from_prediction, fit_loss_curve, optimal_lr_schedule, read_loss_curve

    out = argtypes.output_dir(args.out)  # before the work: a bad --out is a usage error
    try:
        alpha, beta, steps, source = args.alpha, args.beta, args.steps, "given"
        if args.from_prediction is not None:
            clash = [f for f, v in (("--alpha", args.alpha), ("--beta", args.beta),
                                    ("--from-loss-curve", args.from_loss_curve)) if v is not None]
            if clash:
                raise UsageError(f"give either --from-prediction or {' / '.join(clash)}, not both")
            pred = exponents_from_prediction(args.from_prediction)
            alpha, beta, source = pred.alpha, pred.beta, pred.describe()
            print(f"from the predicted spectrum: alpha = {alpha:.4g} +- {pred.alpha_stderr:.2g} (eigenvalues, modes "
                  f"{pred.alpha_modes[0]}..{pred.alpha_modes[1]}), beta = (r - 1)/alpha = {beta:.4g} with target "
                  f"power ~ k^-{pred.target_power_exponent:.4g} +- {pred.target_power_exponent_stderr:.2g} (modes "
                  f"{pred.target_modes[0]}..{pred.target_modes[1]})")
        elif alpha is None:
            raise UsageError("--alpha is required (or --from-prediction to read it from `lmech predict`'s result)")
        if args.from_loss_curve is not None:
            if args.beta is not None:
                raise UsageError("give either --beta or --from-loss-curve, not both")
            step, loss = read_loss_curve(args.from_loss_curve)
            fitted = fit_loss_curve(step, loss, fit_from=args.fit_from, loss_floor=args.loss_floor)
            beta = fitted.exponent
            source = (f"beta fitted from {args.from_loss_curve} ({fitted.n_points} points, "
                      f"stderr {fitted.stderr:.3g})")
            if steps is None:
                steps = int(max(step))
            print(f"fitted beta = {beta:.4g} +- {fitted.stderr:.2g} from {fitted.n_points} points of the loss curve")
        elif beta is None:
            raise UsageError("--beta is required (or --from-loss-curve to fit it)")
        if steps is None:
            raise UsageError("--steps is required (without --from-loss-curve)")
        sched = optimal_lr_schedule(alpha, beta, steps, batch_size=args.batch_size, lr_max=args.lr_max,
                                    noise=args.noise, n_modes=args.n_modes, model_steps=args.model_steps,
                                    source=source)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    (out / "schedule.json").write_text(json.dumps(sched.to_dict()))
    if not args.no_plot:
        sched.plot(out / "schedule.png")
    print(f"optimal schedule: alpha={sched.alpha:.4g}, beta={sched.beta:.4g}, {sched.steps} steps, "
          f"batch {sched.batch_size}, lr_max {sched.lr_max:.4g}")
    print("predicted final loss (model horizon "
          f"{sched.model_steps} steps; baselines with tuned peak):")
    for k, v in sched.predicted_loss.items():
        print(f"  {k:>8}: {v:.6g}  ({v / sched.predicted_loss['optimal']:.3f} x optimal)")
    print(f"results: {out / 'schedule.json'}")
    return 0 if sched.converged else 1
