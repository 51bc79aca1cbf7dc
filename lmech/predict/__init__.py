"""Practitioner tool: the learning curve of your data before training.

* :func:`learning_curve` - predicted test error of kernel regression with an infinitely wide
  MLP's NTK or NNGP versus the number of training samples, from the kernel's spectrum on your
  data, with a band from resampling the data, the fitted data-scaling exponent, the sample
  sizes needed for given errors, and a check against actual kernel regression at small P.
* :class:`LearningCurvePredictor` - the same as an estimator (``fit`` / ``predict_curve``).
* :func:`read_dataset` - X and y from .npy, .npz or .csv files.

This layer may import the theory, the kernels, the spectra, the fits and the base modules.
"""
from lmech.predict._core import (MAX_EXACT, VALIDATION_TOLERANCE, LearningCurvePrediction, LearningCurvePredictor,
                                 Validation, learning_curve, prepare_data)
from lmech.predict._io import read_dataset

__all__ = ["MAX_EXACT", "VALIDATION_TOLERANCE", "LearningCurvePrediction", "LearningCurvePredictor", "Validation",
           "learning_curve", "prepare_data", "read_dataset"]
