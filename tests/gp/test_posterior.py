"""Grid posterior vs dense Cholesky; pathwise variance; gpytorch backend."""

import pytest
import torch

from gpdip.gp.gpytorch_backend import gpytorch_posterior
from gpdip.gp.kernels import RBFTable
from gpdip.gp.posterior import dense_posterior, grid_posterior

from .conftest import exp_const_table


def _problem(size, gen):
    img = torch.rand(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.5
    return img, mask


@pytest.mark.parametrize("size", [(40,), (24, 17), (64, 64)])
def test_grid_mean_matches_dense(size, gen):
    img, mask = _problem(size, gen)
    d = dense_posterior(exp_const_table(size), img, mask, 1e-4)
    g = grid_posterior(exp_const_table, img, mask, 1e-4, tol=1e-10)
    assert ((g.mean - d.mean).norm() / d.mean.norm()) <= 1e-6


def test_cg_tolerance_controls_error(gen):
    size = (32, 32)
    img, mask = _problem(size, gen)
    d = dense_posterior(exp_const_table(size), img, mask, 1e-3)
    errs = []
    for tol in (1e-2, 1e-5):
        g = grid_posterior(exp_const_table, img, mask, 1e-3, tol=tol)
        errs.append(float((g.mean - d.mean).norm() / d.mean.norm()))
    assert errs[1] < errs[0] / 10
    assert errs[1] < 1e-3  # documented: mean error about tol x condition-dependent factor


def test_ml_mean_matches_dense(gen):
    size = (20, 20)
    img, mask = _problem(size, gen)
    d = dense_posterior(exp_const_table(size), img, mask, 1e-3, mean="ml")
    g = grid_posterior(exp_const_table, img, mask, 1e-3, mean="ml", tol=1e-10)
    assert g.info["mean_constant"] == pytest.approx(d.info["mean_constant"], rel=1e-7)


def test_pathwise_variance_matches_exact(gen):
    size = (16, 16)
    n = 600
    img, mask = _problem(size, gen)
    d = dense_posterior(exp_const_table(size), img, mask, 1e-3)
    g = grid_posterior(exp_const_table, img, mask, 1e-3, n_samples=n, tol=1e-8, generator=gen)
    ratio = (g.std**2 / d.std**2)[~mask]
    # each ratio is chi^2_n / n: sd sqrt(2/n) = 0.058; the mean over ~128 pixels (correlated)
    # must be within 4 sd of one pixel; per-pixel ratios within 6 sd.
    se = (2 / n) ** 0.5
    assert abs(float(ratio.mean()) - 1) < 4 * se
    assert float((ratio - 1).abs().max()) < 6 * se
    assert g.info["std_mc_relative_error"] == pytest.approx((1 / (2 * n)) ** 0.5)


def test_dense_samples_variance(gen):
    size = (10, 10)
    img, mask = _problem(size, gen)
    d = dense_posterior(exp_const_table(size), img, mask, 1e-3, n_samples=4000, generator=gen)
    var = ((d.samples - d.mean) ** 2).mean(0)
    assert torch.allclose(var[~mask], d.std[~mask] ** 2, rtol=5 * (2 / 4000) ** 0.5)


@pytest.mark.parametrize("kernel, size", [("rbf", (20, 20)), ("unet2", (12, 12))])
def test_gpytorch_matches_dense(gen, kernel, size):
    """GPyTorch's ExactGP prediction with a table kernel (RBF, or the compiled DIP kernel)
    equals the dense float64 reference."""
    from gpdip.gp.kernels import DIPKernel

    img, mask = _problem(size, gen)
    k = RBFTable(1.7, 0.05) if kernel == "rbf" else DIPKernel("unet2", outputscale=0.05)
    k = k.double()
    mu = float(img[mask].mean())
    with torch.no_grad():
        a = gpytorch_posterior(k, img, mask, 1e-3, mu)
        b = dense_posterior(k.table(size), img, mask, 1e-3)
    assert torch.allclose(a.mean, b.mean, atol=1e-7)
    assert torch.allclose(a.std, b.std, atol=1e-6)


def test_grid_slq_log_marginal_likelihood(gen):
    size = (20, 20)
    img, mask = _problem(size, gen)
    d = dense_posterior(exp_const_table(size), img, mask, 1e-2)
    g = grid_posterior(exp_const_table, img, mask, 1e-2, tol=1e-10, logdet_probes=32, generator=gen)
    se = g.info["log_marginal_likelihood_se"]
    assert se > 0
    assert abs(g.info["log_marginal_likelihood"] - d.info["log_marginal_likelihood"]) < 5 * se


def test_float32_precision_close_to_dense(gen):
    size = (32, 32)
    img, mask = _problem(size, gen)
    d = dense_posterior(exp_const_table(size), img, mask, 1e-3)
    g = grid_posterior(exp_const_table, img, mask, 1e-3, tol=1e-4, precision="float32")
    assert g.mean.dtype == torch.float64
    assert ((g.mean - d.mean).norm() / d.mean.norm()) < 1e-3


@pytest.mark.parametrize("backend", ["grid", "dense"])
def test_denoising_every_pixel_observed(gen, backend):
    """All pixels observed with noise > 0 is GP denoising: the mean is the smoother
    m + K (K + s²I)⁻¹ (y − m), built here from an explicit dense matrix (independent of the
    engine's table lookup), with m the observed mean and the kernel's fitted output scale."""
    from gpdip.gp import inpaint

    size, s2 = (12, 10), 0.01
    img = torch.rand(size, generator=gen, dtype=torch.float64)
    post = inpaint(
        img,
        torch.ones(size, dtype=torch.bool),
        "rbf",
        noise=s2,
        lengthscale=2.0,
        fit=False,
        backend=backend,
        tol=1e-10,
    )
    yy, xx = torch.meshgrid(torch.arange(12.0), torch.arange(10.0), indexing="ij")
    pts = torch.stack([yy.reshape(-1), xx.reshape(-1)], 1).double()
    scale = float(post.info["hyper"]["outputscale"])
    K = scale * torch.exp(-torch.cdist(pts, pts).pow(2) / (2 * 2.0**2))
    y, m = img.reshape(-1), float(img.mean())
    ref = m + K @ torch.linalg.solve(K + s2 * torch.eye(120, dtype=K.dtype), y - m)
    assert torch.allclose(post.mean.reshape(-1), ref, atol=1e-6)
    assert not torch.allclose(post.mean, img, atol=1e-3)  # it smooths: not the input back
