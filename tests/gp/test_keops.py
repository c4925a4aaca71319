"""Scattered-input matmuls: KeOps (when installed) and the dense torch fallback."""

import pytest
import torch

from gpdip.gp.grid import grid_coordinates
from gpdip.gp.keops import keops_available, kernel_matmul, scattered_posterior_mean
from gpdip.gp.kernels import Matern52Table, RBFTable
from gpdip.gp.posterior import dense_posterior


@pytest.mark.parametrize("cls", [RBFTable, Matern52Table])
@pytest.mark.parametrize("backend", ["torch", "keops"])
def test_matmul_matches_formula(cls, backend, gen):
    if backend == "keops" and not keops_available():
        pytest.skip("pykeops not installed")
    k = cls(1.3, 0.7).double()
    x1 = 5 * torch.rand(70, 2, generator=gen, dtype=torch.float64)
    x2 = 5 * torch.rand(50, 2, generator=gen, dtype=torch.float64)
    v = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    r = torch.cdist(x1, x2) / 1.3
    s5 = 5**0.5 * r
    K = torch.exp(-0.5 * r**2) if cls is RBFTable else (1 + s5 + s5**2 / 3) * torch.exp(-s5)
    got = kernel_matmul(k, x1, x2, v, backend=backend, chunk=16)
    assert torch.allclose(got, 0.7 * K @ v, atol=1e-10)


def test_scattered_mean_matches_grid_dense(gen):
    size = (12, 12)
    img = torch.rand(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.5
    k = RBFTable(1.5, 0.05).double()
    ref = dense_posterior(k.table(size).detach(), img, mask, 1e-3)
    x = grid_coordinates(size)
    obs = mask.reshape(-1)
    mean, info = scattered_posterior_mean(
        k, x[obs], img.reshape(-1)[obs], x, 1e-3, tol=1e-10, backend="torch"
    )
    assert info.converged
    assert torch.allclose(mean.reshape(size), ref.mean, atol=1e-8)
