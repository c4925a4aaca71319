"""Extension preconditioner, batched colour solves and the GPyTorch noise bound vs dense."""

import pytest
import torch

from gpdip.errors import GpdipWarning
from gpdip.gp.gpytorch_backend import GPYTORCH_MIN_NOISE, gpytorch_posterior
from gpdip.gp.inpaint import inpaint
from gpdip.gp.kernels import RBFTable
from gpdip.gp.posterior import dense_posterior, grid_posterior

from .conftest import exp_const_table, rbf_table


@pytest.mark.parametrize("table_fn", [rbf_table, exp_const_table], ids=["rbf", "exp+const"])
@pytest.mark.parametrize("noise", [1e-2, 1e-4])
def test_extension_preconditioner_solves_exactly_and_faster(gen, table_fn, noise):
    size = (20, 20)
    img = torch.rand(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.5
    table = table_fn(size)
    ref = dense_posterior(table, img, mask, noise)
    its = {}
    for precond in ("extension", "circulant"):
        # float64 CG: the iteration counts compare the preconditioners, not the precision
        post = grid_posterior(
            table, img, mask, noise, tol=1e-10, max_iter=5000, precond=precond, precision="float64"
        )
        # tol 1e-10 on the residual bounds the mean error by cond(A) * 1e-10 * |y|
        assert torch.allclose(post.mean, ref.mean, atol=1e-6)
        its[precond] = post.info["cg_iterations"]
    assert its["extension"] < its["circulant"]


def test_colour_is_one_batched_solve_matching_dense_per_channel(gen):
    size = (16, 16)
    img = torch.rand(*size, 3, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.5
    table = rbf_table(size, ls=2.0)
    for mean in ("observed", "ml"):
        post = grid_posterior(table, img, mask, 1e-3, mean=mean, tol=1e-10, max_iter=5000)
        assert post.mean.shape == (*size, 3)
        for c in range(3):
            ref = dense_posterior(table, img[..., c], mask, 1e-3, mean=mean)
            assert torch.allclose(post.mean[..., c], ref.mean, atol=1e-7)
            want = ref.info["mean_constant"]
            assert post.info["mean_constant"][c] == pytest.approx(want, abs=1e-8)


def test_batched_colour_samples_have_the_dense_variance(gen):
    """Pathwise samples of 3 channels in one CG: per-channel variance against dense.

    With n samples, each pixel's sample variance has relative sd sqrt(2/n) = 0.18 at
    n = 64; averaged over the 3 x ~200 unobserved pixels (correlated, so fewer than
    600 independent terms) the mean ratio has sd well under 0.05, hence the 0.15 bound.
    A channel/sample row mix-up would pair a prior draw with another draw's correction
    and roughly double the variance.
    """
    size = (20, 20)
    img = torch.rand(*size, 3, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.5
    table = rbf_table(size, ls=2.0)
    post = grid_posterior(table, img, mask, 1e-2, n_samples=64, tol=1e-6, generator=gen)
    assert post.samples.shape == (64, *size, 3)
    ref = dense_posterior(table, img[..., 0], mask, 1e-2)
    hole = ~mask
    for c in range(3):
        ratio = (post.std[..., c][hole] ** 2 / ref.std[hole] ** 2).mean()
        assert float(ratio) == pytest.approx(1.0, abs=0.15)


def test_inpaint_colour_grid_matches_dense_backend(gen):
    size = (24, 24)
    img = torch.rand(*size, 3, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.6
    grid = inpaint(img, mask, "rbf", backend="grid", tol=1e-10)
    dense = inpaint(img, mask, "rbf", backend="dense")
    assert grid.info["hyper"]["noise"] == dense.info["hyper"]["noise"]  # one shared fit
    assert isinstance(grid.info["cg_iterations"], int)  # one CG for the three channels
    assert torch.allclose(grid.mean, dense.mean, atol=1e-6)


def test_gpytorch_noise_below_its_bound_is_raised_with_a_warning(gen):
    size = (10, 10)
    img = torch.rand(size, generator=gen, dtype=torch.float64)
    mask = torch.rand(size, generator=gen) < 0.5
    kernel = RBFTable(2.0, 0.5).double()
    mu = float(img[mask].mean())
    with pytest.warns(GpdipWarning, match="below GPyTorch's noise bound 0.0001"):
        post = gpytorch_posterior(kernel, img, mask, 1e-6, mu)
    assert post.info["noise"] == GPYTORCH_MIN_NOISE
    ref = dense_posterior(kernel.table(size).detach(), img, mask, GPYTORCH_MIN_NOISE, mean=mu)
    assert torch.allclose(post.mean, ref.mean, atol=1e-5)


def test_extension_preconditioner_in_1d(gen):
    table = rbf_table((60,), ls=2.0)
    y = torch.rand(60, generator=gen, dtype=torch.float64)
    mask = torch.rand(60, generator=gen) < 0.5
    post = grid_posterior(table, y, mask, 1e-4, tol=1e-10, max_iter=5000)
    assert torch.allclose(post.mean, dense_posterior(table, y, mask, 1e-4).mean, atol=1e-8)
