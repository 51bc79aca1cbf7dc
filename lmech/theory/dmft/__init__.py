"""Dynamical mean field theory (DMFT) of feature learning in wide networks.

Public solvers (see each module for the equations and costs):

* :func:`two_layer`, :func:`deep` -- Monte Carlo DMFT of nonlinear mean-field networks
  (:mod:`lmech.theory.dmft.sampling`);
* :func:`deep_linear` -- closed-form DMFT of deep linear networks
  (:mod:`lmech.theory.dmft.deep_linear`);
* :func:`two_layer_fluctuations` -- finite-width (1/N) fluctuations around the DMFT
  (:mod:`lmech.theory.dmft.finite_width`);
* :func:`learning_rule_dynamics`, :func:`lazy_effective_kernel` -- DMFT of alternative learning
  rules (:mod:`lmech.theory.dmft.learning_rules`).
"""
from lmech.theory.dmft.deep_linear import DeepLinearDMFTResult, deep_linear
from lmech.theory.dmft.finite_width import FluctuationResult, two_layer_fluctuations
from lmech.theory.dmft.learning_rules import LearningRuleResult, lazy_effective_kernel, learning_rule_dynamics
from lmech.theory.dmft.sampling import SamplingDMFTResult, deep, two_layer

__all__ = [
    "two_layer",
    "deep",
    "deep_linear",
    "two_layer_fluctuations",
    "learning_rule_dynamics",
    "lazy_effective_kernel",
    "SamplingDMFTResult",
    "DeepLinearDMFTResult",
    "FluctuationResult",
    "LearningRuleResult",
]
