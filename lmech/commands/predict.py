"""``lmech predict``: the learning curve of your data before training.

Exit status: 0 when the prediction was made and the theory agrees with kernel regression on the
data within the tolerance (or no check was asked for), 1 when the check failed or the theory did not
converge (results are still written), 2 on a usage error (bad flags, a bad data file: the message
names the file or the argument). Writes ``prediction.json`` and ``prediction.png``. Importing this
module imports no numpy-heavy or torch code.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from lmech import _argtypes as argtypes

__all__ = ["add_parser"]


def _noise(text: str):
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number >= 0, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number >= 0, got {text!r}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="predict the learning curve of your data (kernel regression / infinitely wide MLP) before training",
        description="Predict the test error of kernel regression with an infinitely wide MLP's NTK or NNGP versus "
        "the number of training samples P, from the kernel's eigen-spectrum on your data and the target's power on "
        "each mode (the data pool is taken as the data distribution). Inputs are flattened per sample and "
        "standardised per feature (zero mean, unit variance); targets are centred; 1-d integer labels with 2..20 "
        "classes become centred one-hot vectors (errors summed over outputs). Pools of more than 2000 points use a "
        "Nystrom spectrum on --landmarks random points. The band comes from resampling the pool; the theory is "
        "checked against kernel ridge regression at three small P on random train/held-out splits, with a warning "
        "when they differ by more than --tolerance (default 20%). prediction.json also holds spectrum_fit: power laws "
        "fitted to the kernel's eigenvalues (lam_k ~ k^-a) and to the target's power per mode (p_k ~ k^-r) over the "
        "modes the curve probes, with their fit ranges; `lmech schedule --from-prediction` reads them.",
    )
    p.add_argument("--X", required=True, dest="X_path",
                   help="inputs: a .npy file (n, ...), or a .npz file with arrays X and y, or a .csv file")
    p.add_argument("--y", dest="y_path", default=None, help="targets as a .npy file (n,) or (n, C); only with .npy X")
    p.add_argument("--target-column", default=None,
                   help="for .csv: the target column, a header name or a 0-based index (default: the last)")
    p.add_argument("--task", choices=("auto", "regression", "classification"), default="auto",
                   help="how to read 1-d y (default auto: integer values with 2..20 classes are class labels)")
    p.add_argument("--kernel", choices=("ntk", "nngp"), default="ntk")
    p.add_argument("--model", default=None, metavar="MODULE:FACTORY",
                   help="use the empirical NTK of a finite network instead: FACTORY(d) in the importable MODULE "
                   "(the current folder is searched) returns a torch.nn.Module mapping (n, d) standardised inputs "
                   "to one output per sample; --kernel/--depth/--activation are then ignored")
    p.add_argument("--depth", type=argtypes.nonnegative_int, default=1, help="hidden layers (default 1)")
    p.add_argument("--activation", choices=("relu", "erf", "linear"), default="relu")
    p.add_argument("--bias-var", type=float, default=0.0, help="bias variance of every layer (default 0)")
    p.add_argument("--weight-var", type=argtypes.positive_float, default=2.0, help="weight variance (default 2)")
    p.add_argument("--ridge", type=float, default=0.0,
                   help="ridge added to the P x P Gram matrix (default 0: interpolation, as training to convergence)")
    p.add_argument("--noise", type=_noise, default="auto",
                   help="label-noise variance per output in y (treated as fresh noise by the theory), or auto (default: noise stays part of the target, its variance is estimated and reported)")
    p.add_argument("--P", nargs="+", action=argtypes.list_action(argtypes.positive_int), default=None,
                   help="training-set sizes, e.g. 10,20,50 (default: 25 log-spaced sizes up to what the pool supports)")
    p.add_argument("--bootstrap", type=argtypes.nonnegative_int, default=20,
                   help="resamples of the pool for the band (default 20; 0: no band)")
    p.add_argument("--splits", type=argtypes.positive_int, default=5,
                   help="random train/held-out splits per P for the check (default 5; at least 2)")
    p.add_argument("--no-check", action="store_true", help="skip the check against kernel regression")
    p.add_argument("--tolerance", type=argtypes.positive_float, default=0.2,
                   help="relative gap theory vs kernel regression beyond which to warn (default 0.2)")
    p.add_argument("--landmarks", type=argtypes.positive_int, default=2000,
                   help="Nystrom landmarks for pools of more than 2000 points (default 2000)")
    p.add_argument("--memory-gb", type=argtypes.positive_float, default=4.0,
                   help="memory limit for the kernel rows computed at once (default 4)")
    p.add_argument("--seed", type=argtypes.nonnegative_int, default=0)
    p.add_argument("--out", default="runs/predict", help="output folder (default runs/predict)")
    p.add_argument("--no-plot", action="store_true", help="write only prediction.json")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace) -> int:
    import warnings

    from lmech._errors import UsageError
    from lmech.predict import learning_curve, read_dataset

    try:
        model = None if args.model is None else argtypes.load_callable(args.model)
        X, y = read_dataset(args.X_path, args.y_path, target_column=args.target_column)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the summary says it
            result = learning_curve(
                X, y, args.P, kernel=args.kernel, depth=args.depth, activation=args.activation,
                bias_var=args.bias_var, weight_var=args.weight_var, ridge=args.ridge, noise=args.noise,
                task=args.task, n_bootstrap=args.bootstrap, validate=not args.no_check, n_splits=args.splits,
                landmarks=args.landmarks, memory_gb=args.memory_gb, tolerance=args.tolerance, seed=args.seed,
                model=model)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "prediction.json").write_text(json.dumps(_strict(result.to_dict()), indent=1, allow_nan=False))
    if not args.no_plot:
        result.plot(out / "prediction.png")
    print(result.summary())
    print(f"results: {out / 'prediction.json'}")
    ok = result.converged and (result.validation is None or result.validation.within)
    return 0 if ok else 1


def _strict(value):
    """NaN and infinities become null, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value
