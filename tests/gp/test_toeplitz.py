"""Grid operator and CG against dense float64 references."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpdip.gp.cg import CGConvergenceWarning, conjugate_gradients, grid_preconditioner
from gpdip.gp.grid import dense_from_table
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator

from .conftest import exp_const_table, rbf_table


@pytest.mark.parametrize("size", [(7,), (31,), (9, 6), (16, 16)])
def test_matmul_matches_dense(size, gen):
    table = exp_const_table(size)
    n = int(torch.tensor(size).prod())
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    got = GridKernelOperator(table).matmul(x)
    # independent reference: explicit double loop over pixel pairs for the first column
    ref = dense_from_table(table) @ x
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_dense_from_table_entries():
    table = rbf_table((3, 4))
    K = dense_from_table(table)
    # pixel (0,0) is index 0, pixel (2,3) is index 11: offset (2,3) -> exp(-13/18)
    assert K[0, 11].item() == pytest.approx(torch.exp(torch.tensor(-13 / 18.0)).item())
    assert K[11, 0].item() == pytest.approx(K[0, 11].item())


def test_masked_operator_and_cg(gen):
    size = (20, 18)
    table = exp_const_table(size)
    mask = torch.rand(size, generator=gen) < 0.5
    noise = torch.tensor(1e-4, dtype=torch.float64)
    op = MaskedGridOperator(GridKernelOperator(table), mask, noise)
    idx = op.index
    A = dense_from_table(table)[idx][:, idx] + 1e-4 * torch.eye(idx.numel(), dtype=torch.float64)
    b = torch.randn(4, idx.numel(), generator=gen, dtype=torch.float64)
    assert torch.allclose(op.matvec(b), b @ A, atol=1e-12)
    x, info = conjugate_gradients(op.matvec, b, grid_preconditioner(op), tol=1e-10)
    ref = torch.linalg.solve(A, b.T).T
    assert info.converged and info.residual <= 1e-10
    assert ((x - ref).norm() / ref.norm()) < 1e-8


def test_preconditioner_reduces_iterations_rough_kernel(gen):
    size = (48, 48)
    mask = torch.rand(size, generator=gen) < 0.5
    op = MaskedGridOperator(
        GridKernelOperator(exp_const_table(size)), mask, torch.tensor(1e-4, dtype=torch.float64)
    )
    b = torch.randn(1, op.index.numel(), generator=gen, dtype=torch.float64)
    _, plain = conjugate_gradients(op.matvec, b, None, tol=1e-6, max_iter=3000)
    _, pre = conjugate_gradients(op.matvec, b, grid_preconditioner(op), tol=1e-6, max_iter=3000)
    assert pre.converged and pre.iterations < 0.9 * plain.iterations


def test_cg_warns_when_not_converged(gen):
    A = torch.diag(torch.logspace(0, 8, 50, dtype=torch.float64))
    b = torch.randn(50, generator=gen, dtype=torch.float64)
    with pytest.warns(CGConvergenceWarning, match="residual"):
        _, info = conjugate_gradients(lambda v: v @ A, b, tol=1e-12, max_iter=3)
    assert not info.converged and info.iterations == 3


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), ls=st.floats(0.5, 5.0))
def test_matmul_property(h, w, ls):
    table = rbf_table((h, w), ls=ls)
    x = torch.linspace(-1, 1, h * w, dtype=torch.float64)[:, None]
    got = GridKernelOperator(table).matmul(x)
    assert torch.allclose(got, dense_from_table(table) @ x, atol=1e-12)
