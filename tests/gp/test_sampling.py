"""Circulant-embedding prior samples against the kernel and a dense Cholesky sampler."""

import pytest

from gpdip.errors import GpdipError
from gpdip.gp.grid import dense_from_table
from gpdip.gp.sampling import CirculantSampler, sample_prior, sample_prior_dense

from .conftest import exp_const_table, rbf_table

N = 20000
# Empirical covariance entries have standard error sqrt((K_ii K_jj + K_ij^2) / N) <= sqrt(2/N) max K
# = 0.01 max K for N = 20000; 5 standard errors over ~900 entries keeps false failures negligible.
TOL = 5 * (2 / N) ** 0.5


def _rbf2(size):  # moderate lengthscale: the torus needs little padding, so the test stays fast
    return rbf_table(size, ls=2.0)


@pytest.mark.parametrize("kernel", [exp_const_table, _rbf2])
def test_prior_covariance(kernel, gen):
    size = (6, 5)
    x = sample_prior(lambda s: kernel(s), size, n=N, generator=gen).reshape(N, -1)
    emp = x.T @ x / N
    K = dense_from_table(kernel(size))
    assert (emp - K).abs().max() < TOL * K.diagonal().max()
    # and it must fail for a wrong kernel: a different lengthscale is detected
    wrong = dense_from_table(rbf_table(size, ls=1.0))
    assert (emp - wrong).abs().max() > TOL * K.diagonal().max()


def test_1d_samples_and_dense_reference(gen):
    x = sample_prior(exp_const_table((12,)), n=N, generator=gen)
    y = sample_prior_dense(exp_const_table((12,)), n=N, generator=gen)
    K = dense_from_table(exp_const_table((12,)))
    for s in (x, y):
        assert ((s.T @ s / N) - K).abs().max() < TOL * K.diagonal().max()


def test_non_psd_embedding_raises_for_fixed_table():
    with pytest.raises(GpdipError, match="most negative eigenvalue"):
        CirculantSampler(rbf_table((8, 8), ls=4.0), (8, 8))


def test_callable_pads_until_psd():
    s = CirculantSampler(lambda size: rbf_table(size, ls=4.0), (8, 8))
    assert min(s.period) > 16 and s.min_eigenvalue >= -1e-10 * float(s.sqrt_lam.max()) ** 2


def test_dip_prior_sample_covariance(gen):
    from gpdip import compile_kernel

    size = (5, 5)
    x = sample_prior(lambda s: compile_kernel("unet2", s), size, n=N, generator=gen)
    x = x.reshape(N, -1)
    K = dense_from_table(compile_kernel("unet2", size).double())
    assert ((x.T @ x / N) - K).abs().max() < TOL * K.diagonal().max()
