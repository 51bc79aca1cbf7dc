"""Kernels of wide networks: analytic infinite-width NNGP/NTK and the empirical NTK.

* :func:`nngp_mlp`, :func:`ntk_mlp`, :func:`mlp_kernels` -- arc-cosine (ReLU) and arcsine
  (erf) recursions for fully connected networks in NTK parameterisation, float64.
* :func:`empirical_ntk` -- J(x1) J(x2)^T of any ``torch.nn.Module`` via ``torch.func``.
* :class:`NTKMLP` -- the finite-width network whose kernels the analytic functions are.
"""
from lmech.kernels._analytic import ACTIVATIONS, MLPKernels, mlp_kernels, mlp_kernels_of_cosine, nngp_mlp, ntk_mlp
from lmech.kernels._empirical import empirical_ntk
from lmech.kernels._networks import NTKMLP

__all__ = ["ACTIVATIONS", "MLPKernels", "mlp_kernels", "mlp_kernels_of_cosine", "nngp_mlp", "ntk_mlp", "empirical_ntk", "NTKMLP"]
