"""Practitioner tools: fit scaling laws to your own runs, and plan learning-rate schedules.

* :func:`fit` - Chinchilla or precision-aware scaling law fitted to runs (N, D, loss[, bits])
  with bootstrap intervals, compute-optimal ``N*(C)``, ``D*(C)`` and a leave-largest-out check.
* :func:`read_runs` - the runs from a CSV file, with errors naming the column and row.
* :func:`optimal_lr_schedule` - the optimal learning-rate schedule of the power-law theory
  (:mod:`lmech.theory.schedules`) beside tuned constant, cosine and warmup-stable-decay ones.
* :func:`exponents_from_prediction` - the schedule model's alpha and beta from the spectrum
  fitted by ``lmech predict`` (its ``prediction.json``).
* :func:`as_lr_lambda` - a schedule as a function for ``torch.optim.lr_scheduler.LambdaLR``.

This layer may import the theory, the fits and the base modules; nothing below imports it.
"""
from lmech.scaling.fitting import FORMS, ComputeOptimal, Holdout, ScalingFit, fit, read_runs
from lmech.scaling.schedule import (LRSchedule, PredictedExponents, as_lr_lambda, exponents_from_prediction,
                                    fit_loss_curve, optimal_lr_schedule, read_loss_curve)

__all__ = ["FORMS", "ComputeOptimal", "Holdout", "ScalingFit", "fit", "read_runs", "LRSchedule",
           "as_lr_lambda", "fit_loss_curve", "optimal_lr_schedule", "read_loss_curve", "PredictedExponents",
           "exponents_from_prediction"]
