"""Kernels: table lookup/interpolation, DIPKernel via the compiler, hyperparameter fits."""

import pytest
import torch

from gpdip.gp.grid import dense_from_table, grid_coordinates
from gpdip.gp.hyper import fit_hyperparameters
from gpdip.gp.kernels import DIPKernel, Matern52Table, RBFTable, interpolate_table
from gpdip.gp.mll import exact_mll
from gpdip.gp.posterior import dense_posterior
from gpdip.gp.sampling import sample_prior


def test_interpolation_exact_and_bilinear():
    t = torch.arange(25, dtype=torch.float64).reshape(5, 5)  # linear in both axes
    d = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.5, 0.25], [-1.5, 1.75]], dtype=torch.float64)
    expect = t[2, 2] + 5 * d[:, 0] + d[:, 1]  # bilinear reproduces linear functions exactly
    assert torch.allclose(interpolate_table(t, d), expect)


def test_matern_formula():
    k = Matern52Table(lengthscale=2.0, outputscale=3.0).double()
    x = torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    v = 5**0.5
    expect = 3 * (1 + v + v * v / 3) * torch.exp(torch.tensor(-v)).item()
    assert k(x, x).to_dense()[0, 1].item() == pytest.approx(expect)


def test_dip_kernel_matches_compiled_table():
    from gpdip import compile_kernel

    k = DIPKernel("unet2", outputscale=2.0).double()
    table = compile_kernel("unet2", (6, 5))
    x = grid_coordinates((6, 5))
    got = k(x, x).to_dense().detach()
    assert torch.allclose(got, 2.0 * dense_from_table(table.double()), atol=1e-10)
    assert torch.allclose(k.table((6, 5)).detach(), 2.0 * table.double())


def test_dip_kernel_learns_params():
    k = DIPKernel("unet2", learn=("sigma",), init={"sigma": 1.0}).double()
    t = k.table((6, 6)).sum()
    t.backward()
    assert k.log_sigma.grad is not None and torch.isfinite(k.log_sigma.grad)


def test_fit_recovers_lengthscale(gen):
    size = (24, 24)
    truth = RBFTable(2.5, 1.0).double()
    img = sample_prior(lambda s: truth.table(s).detach(), size, 1, gen)[0]
    img = img + 0.05 * torch.randn(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.6
    k = RBFTable(1.0).double()
    fit = fit_hyperparameters(k, img, mask, crop=24)
    assert fit["lengthscale"] == pytest.approx(2.5, rel=0.3)
    assert fit["noise"] == pytest.approx(0.0025, rel=0.6)
    ref = dense_posterior(k.table(size).detach(), img, mask, fit["noise"])
    mu = float(img[mask].mean())
    mll = exact_mll(k.table(size).detach(), img, mask, torch.tensor(fit["noise"]), mu)
    assert float(mll) == pytest.approx(ref.info["log_marginal_likelihood"], rel=1e-9)


def test_mll_gradient_matches_autograd_through_cholesky(gen):
    size = (8, 8)
    img = torch.rand(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.6
    k = RBFTable(1.5, 0.3).double()
    noise = torch.tensor(1e-2, dtype=torch.float64, requires_grad=True)
    exact_mll(k.table(size), img, mask, noise, 0.4).backward()
    g_custom = (k.raw_lengthscale.grad.clone(), noise.grad.clone())
    k.zero_grad()
    noise.grad = None
    # reference: plain autograd through torch.linalg.cholesky
    idx = torch.nonzero(mask.reshape(-1)).reshape(-1)
    eye = torch.eye(idx.numel(), dtype=torch.float64)  # float64: a float32 eye would round noise
    A = dense_from_table(k.table(size), size)[idx][:, idx] + noise * eye
    r = img.reshape(-1)[idx] - 0.4
    L = torch.linalg.cholesky(A)
    ref = -0.5 * (r @ torch.cholesky_solve(r[:, None], L)[:, 0] + 2 * L.diagonal().log().sum())
    ref.backward()
    assert torch.allclose(g_custom[0], k.raw_lengthscale.grad, rtol=1e-8)
    assert torch.allclose(g_custom[1], noise.grad, rtol=1e-8)
