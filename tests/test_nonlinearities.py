"""The shared nonlinearity table: derivatives against autograd, Gaussian kernels against an
independent computation (the Gauss-Hermite rule against the closed forms, and Monte Carlo)."""
import numpy as np
import pytest
import torch

import lmech.nonlinearities as nlmod
from lmech.nonlinearities import NONLINEARITIES, gaussian_kernels


@pytest.mark.parametrize("name", sorted(NONLINEARITIES))
def test_derivatives_match_autograd(name):
    nl = NONLINEARITIES[name]
    h = torch.linspace(-3, 3, 101, dtype=torch.float64).add(0.013).requires_grad_()  # no exact 0 (relu kink)
    (d1,) = torch.autograd.grad(nl.phi(h).sum(), h, create_graph=True)
    np.testing.assert_allclose(d1.detach(), nl.dphi(h).detach(), atol=1e-12)
    if name in ("relu", "linear"):  # phi'' = 0 almost everywhere
        assert torch.all(nl.ddphi(h) == 0)
    else:
        (d2,) = torch.autograd.grad(d1.sum(), h)
        np.testing.assert_allclose(d2, nl.ddphi(h).detach(), atol=1e-12)
    v, dv = nl.value_and_grad(h.detach())
    np.testing.assert_allclose(dv, nl.dphi(h).detach(), atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(NONLINEARITIES))
def test_numpy_fill_matches_torch(name, dtype):
    """The in-place numpy pair equals the torch functions (same values up to rounding)."""
    nl = NONLINEARITIES[name]
    h = np.random.default_rng(1).standard_normal((3, 7, 5)).astype(dtype) * 2
    v, g = np.full_like(h, np.nan), np.full_like(h, np.nan)
    nl.fill(h, v, g)
    # measured max deviation over this sample: 2.2e-16 (float64), 1.2e-7 (float32), i.e. 1 ulp
    tol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(v, nl.phi(torch.from_numpy(h)).numpy(), atol=tol)
    np.testing.assert_allclose(g, nl.dphi(torch.from_numpy(h)).numpy(), atol=tol)
    assert v.dtype == g.dtype == dtype


def _kernel():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 4))
    return X @ X.T / 4


@pytest.mark.parametrize("name", ["erf", "linear"])
def test_quadrature_matches_closed_forms(name, monkeypatch):
    K = _kernel()
    exact = gaussian_kernels(name, K)
    # force the Gauss-Hermite branch with the same functions under another name
    monkeypatch.setitem(NONLINEARITIES, "quad", NONLINEARITIES[name])
    quad = gaussian_kernels("quad", K)
    for a, b in zip(exact, quad):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)  # measured max 2.3e-7 (erf), 1e-15 (linear)


@pytest.mark.parametrize("name", sorted(NONLINEARITIES))
def test_gaussian_kernels_match_monte_carlo(name):
    K = _kernel()
    nl = NONLINEARITIES[name]
    gen = torch.Generator().manual_seed(1)
    h = torch.randn(400_000, 5, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(
        torch.as_tensor(K) + 1e-12 * torch.eye(5)).T
    for exact, f in zip(gaussian_kernels(name, K), (nl.phi, nl.dphi)):
        v = f(h)
        mc = (v.T @ v / len(h)).numpy()
        assert np.abs(exact - mc).max() < 6e-3  # MC standard error ~1e-3 (measured max deviation 1.3e-3)


def test_table_is_shared():
    from lmech.sim.mean_field import ACTIVATIONS
    from lmech.theory.dmft.sampling import DMFT_ACTIVATIONS
    for name, nl in nlmod.NONLINEARITIES.items():
        assert ACTIVATIONS[name] == (nl.phi, nl.dphi)
        assert DMFT_ACTIVATIONS[name][:3] == (nl.phi, nl.dphi, nl.ddphi)
