"""SLQ log-determinant against dense float64, with an exact Hutchinson error bar."""

import torch

from gpdip.gp.grid import dense_from_table
from gpdip.gp.slq import slq_logdet
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator

from .conftest import exp_const_table


def test_slq_logdet_matches_dense(gen):
    size = (20, 20)
    mask = torch.rand(size, generator=gen) < 0.5
    op = MaskedGridOperator(GridKernelOperator(exp_const_table(size)), mask,
                            torch.tensor(1e-3, dtype=torch.float64))
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
