"""SLQ log-determinant against dense float64, with an exact Hutchinson error bar."""

import pytest
import torch

from gpdip.gp.grid import dense_from_table
from gpdip.gp.slq import ShiftedQuadrature, slq_logdet
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator

from .conftest import exp_const_table


def test_slq_logdet_matches_dense(gen):
    size = (20, 20)
    mask = torch.rand(size, generator=gen) < 0.5
    op = MaskedGridOperator(
        GridKernelOperator(exp_const_table(size)), mask, torch.tensor(1e-3, dtype=torch.float64)
    )
    idx = op.index
    A = dense_from_table(exp_const_table(size))[idx][:, idx] + 1e-3 * torch.eye(idx.numel())
    evals, evecs = torch.linalg.eigh(A)
    logA = evecs @ torch.diag(evals.log()) @ evecs.T
    exact = float(evals.log().sum())
    probes = 32
    # Rademacher Hutchinson variance: 2 * sum_{i != j} logA_ij^2 per probe
    sd = (2 * float((logA**2).sum() - (logA.diagonal() ** 2).sum()) / probes) ** 0.5
    est, err = slq_logdet(op.matvec, idx.numel(), probes=probes, steps=60, generator=gen)
    assert abs(est - exact) < 4 * sd + 1e-6 * abs(exact)
    assert 0.3 * sd < err < 3 * sd  # the reported error bar is the right size


def test_shifted_quadrature_against_dense(gen):
    """Whole-image likelihood of ``s (K + lam I)`` for several noise levels from one run.

    With as many Lanczos steps as observed pixels the quadrature is exact, so the
    quadratic term must match to roundoff and the log-det to within its probe error
    (4 reported standard errors).  With 40 steps the extra (quadrature) bias of the
    log-det is measured below the probe error at these noise levels.
    """
    size = (16, 16)
    mask = torch.rand(size, generator=gen) < 0.5
    table = exp_const_table(size)
    op = MaskedGridOperator(GridKernelOperator(table), mask, torch.tensor(0.0, dtype=torch.float64))
    idx = op.index
    K = dense_from_table(table)[idx][:, idx]
    r = torch.randn(idx.numel(), generator=gen, dtype=torch.float64)
    for steps in (idx.numel(), 40):
        quad = ShiftedQuadrature(op.matvec, r, probes=16, steps=steps, generator=gen)
        for lam in (1e-1, 1e-2, 1e-3):
            A = K + lam * torch.eye(idx.numel(), dtype=torch.float64)
            exact_logdet = float(torch.linalg.slogdet(A)[1])
            est, se = quad.logdet(lam)
            assert abs(est - exact_logdet) < 4 * se
            exact_quad = float(r @ torch.linalg.solve(A, r))
            tol = 1e-8 if steps == idx.numel() else 1e-3
            assert quad.quadratic(lam) == pytest.approx(exact_quad, rel=tol)
        scale, noise = 0.7, 1e-2
        A = scale * K + noise * torch.eye(idx.numel(), dtype=torch.float64)
        exact = float(
            torch.distributions.MultivariateNormal(
                torch.zeros_like(r), covariance_matrix=A
            ).log_prob(r)
        )
        est_se = 0.5 * quad.logdet(noise / scale)[1]
        assert abs(quad.log_marginal_likelihood(scale, noise) - exact) < 4 * est_se + 1e-6
