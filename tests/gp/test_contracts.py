"""Ecosystem contracts: linear_operator's and gpytorch's own test suites on gpdip's classes.

``GridKernelOperator`` and ``MaskedGridOperator`` run linear_operator's
``LinearOperatorTestCase`` (against an independent dense matrix built by indexing the
table); the table kernels run gpytorch's ``BaseKernelTestCase``.  Every excluded test
is overridden below with the reason.  Both suites seed torch through their ``seed``.
"""

from __future__ import annotations

import unittest

import pytest
import torch
from gpytorch.test.base_kernel_test_case import BaseKernelTestCase
from linear_operator.test.linear_operator_test_case import LinearOperatorTestCase

from gpdip.gp.kernels import DIPKernel, Matern52Table, RBFTable
from gpdip.gp.toeplitz import GridKernelOperator, MaskedGridOperator

HALF_REASON = (
    "float16: the operator's matmul is an FFT, and torch's CPU FFT (pocketfft) has no "
    "half precision; computing in float32 and casting would only pretend to support it"
)


def exp_table(size: tuple[int, ...], lengthscales: list[float]) -> torch.Tensor:
    """``(B, *table)`` float32 tables of ``exp(-r / l_b) + 0.1 + [r = 0]``.

    Positive definite; the white-noise term (a nugget of 1) keeps the condition number
    small enough for the suite's float32 CG solves at tolerance 1e-4 to meet its 2%.
    """
    axes = [torch.arange(-(s - 1), s, dtype=torch.float64) for s in size]
    grids = torch.meshgrid(*axes, indexing="ij")
    r = torch.stack([g * g for g in grids]).sum(0).sqrt()
    return torch.stack([torch.exp(-r / ls) + 0.1 + (r == 0) for ls in lengthscales]).float()


def dense_reference(table: torch.Tensor, grid_dims: int) -> torch.Tensor:
    """``K[..., i, j]`` = symmetric part of the table at offset ``p_i - p_j`` (row-major).

    Independent of the FFT path: plain advanced indexing of the table, batched.  The
    symmetrisation changes no value here (the test tables are symmetric); it makes the
    reference's gradient w.r.t. the table the one of the operator, which by construction
    depends on ``T[d]`` and ``T[-d]`` only through their mean.
    """
    sym = 0.5 * (table + table.flip(tuple(range(-grid_dims, 0))))
    size = [(s + 1) // 2 for s in table.shape[-grid_dims:]]
    coords = torch.cartesian_prod(*[torch.arange(s) for s in size]).reshape(-1, grid_dims)
    diff = coords[:, None, :] - coords[None, :, :] + torch.tensor(size) - 1
    return sym[(..., *diff.unbind(-1))]


class _HalfExcluded:
    def test_half(self):
        pytest.skip(HALF_REASON)


class TestGridKernelOperator(_HalfExcluded, LinearOperatorTestCase, unittest.TestCase):
    """A 4 x 5 grid (n = 20), no batch."""

    seed = 0

    def create_linear_op(self):
        return GridKernelOperator(exp_table((4, 5), [2.0])[0])

    def evaluate_linear_op(self, linear_op):
        return dense_reference(linear_op.table, linear_op.grid_dims)


class TestGridKernelOperator1D(_HalfExcluded, LinearOperatorTestCase, unittest.TestCase):
    """A 1-D grid of 11 points, no batch."""

    seed = 1

    def create_linear_op(self):
        return GridKernelOperator(exp_table((11,), [3.0])[0])

    def evaluate_linear_op(self, linear_op):
        return dense_reference(linear_op.table, linear_op.grid_dims)


class TestGridKernelOperatorBatch(_HalfExcluded, LinearOperatorTestCase, unittest.TestCase):
    """A batch of 2 tables on a 3 x 4 grid: ``(2, 12, 12)``."""

    seed = 2

    def create_linear_op(self):
        return GridKernelOperator(exp_table((3, 4), [1.5, 4.0]), grid_dims=2)

    def evaluate_linear_op(self, linear_op):
        return dense_reference(linear_op.table, linear_op.grid_dims)


def _masked_dense(op: MaskedGridOperator) -> torch.Tensor:
    full = dense_reference(op.base.table, op.base.grid_dims)
    k_oo = full[..., op.index, :][..., :, op.index]
    eye = torch.eye(op.index.numel(), dtype=k_oo.dtype)
    return k_oo + op.noise.reshape(*op.noise.shape, 1, 1) * eye


class TestMaskedGridOperator(_HalfExcluded, LinearOperatorTestCase, unittest.TestCase):
    """Observed block of a 5 x 5 grid (17 pixels observed) plus noise 0.05."""

    seed = 3

    def create_linear_op(self):
        mask = torch.ones(5, 5, dtype=torch.bool)
        mask[1:3, 1:4] = False  # a hole, like inpainting; 25 - 6 - 2 = 17 observed
        mask[4, 0] = mask[0, 4] = False
        return MaskedGridOperator(
            GridKernelOperator(exp_table((5, 5), [2.0])[0]), mask, torch.tensor(0.05)
        )

    def evaluate_linear_op(self, linear_op):
        return _masked_dense(linear_op)


class TestMaskedGridOperatorBatch(_HalfExcluded, LinearOperatorTestCase, unittest.TestCase):
    """A batch of 2 (e.g. colour channels): shared mask, own tables and noises."""

    seed = 4

    def create_linear_op(self):
        mask = torch.ones(4, 4, dtype=torch.bool)
        mask[1:3, 0:2] = False  # no reflection symmetry: no repeated eigenvalues (see eigh)
        mask[3, 3] = False  # 11 observed
        return MaskedGridOperator(
            GridKernelOperator(exp_table((4, 4), [2.0, 3.0]), grid_dims=2),
            mask,
            torch.tensor([0.05, 0.1]),
        )

    def evaluate_linear_op(self, linear_op):
        return _masked_dense(linear_op)


# ---- gpytorch kernels -------------------------------------------------------------------


class TestRBFTableContract(BaseKernelTestCase, unittest.TestCase):
    seed = 5

    def create_kernel_no_ard(self, **kwargs):
        return RBFTable(1.3, 0.7, **kwargs)

    def create_kernel_ard(self, num_dims, **kwargs):
        return RBFTable(1.3, 0.7, dims=num_dims, ard_num_dims=num_dims, **kwargs)


class TestMatern52TableContract(BaseKernelTestCase, unittest.TestCase):
    seed = 6

    def create_kernel_no_ard(self, **kwargs):
        return Matern52Table(2.1, 1.4, **kwargs)

    def create_kernel_ard(self, num_dims, **kwargs):
        return Matern52Table(2.1, 1.4, dims=num_dims, ard_num_dims=num_dims, **kwargs)


class _DIPActiveDims:
    """The inherited active-dims tests select 4 and 6 of 10 input columns, but the DIP
    kernel is defined on 1-D or 2-D pixel coordinates only (it raises GpdipError on other
    widths).  These adaptations check the same contract with 2 selected columns."""

    def _check_active_dims(self, active_dims):
        kernel = self.create_kernel_no_ard(active_dims=active_dims)
        x = self.create_data_no_batch()
        got = kernel(x).evaluate_kernel().to_dense()
        ref = self.create_kernel_no_ard()(x[:, active_dims]).evaluate_kernel().to_dense()
        self.assertAllClose(got, ref, rtol=1e-6, atol=1e-7)

    def test_active_dims_list(self):
        self._check_active_dims([1, 6])

    def test_active_dims_range(self):
        self._check_active_dims(list(range(3, 5)))


class TestDIPKernelContract(_DIPActiveDims, BaseKernelTestCase, unittest.TestCase):
    """Real-valued inputs (the suite's ``randn`` data): the interpolating path."""

    seed = 7

    def create_kernel_no_ard(self, **kwargs):
        return DIPKernel("unet2", outputscale=0.7, **kwargs)


class TestDIPKernelPixelContract(_DIPActiveDims, BaseKernelTestCase, unittest.TestCase):
    """Integer inputs (pixels): the direct-lookup path, under the same contract."""

    seed = 8

    def create_kernel_no_ard(self, **kwargs):
        return DIPKernel("unet2", outputscale=0.7, **kwargs)

    def create_data_no_batch(self):
        return torch.randint(-4, 5, (50, 10)).float()

    def create_data_single_batch(self):
        return torch.randint(-4, 5, (2, 3, 2)).float()

    def create_data_double_batch(self):
        return torch.randint(-4, 5, (3, 2, 50, 2)).float()


def test_masked_matvec_keeps_float32_and_batched_noise():
    # the CG paths run in float32 with a float64 scalar noise: no silent promotion
    table = exp_table((4, 4), [2.0])[0].double()
    mask = torch.rand(4, 4, generator=torch.Generator().manual_seed(9)) < 0.6
    op = MaskedGridOperator(GridKernelOperator(table, torch.float32), mask, torch.tensor(0.1))
    v = torch.randn(3, op.index.numel(), generator=torch.Generator().manual_seed(10))
    assert op.matvec(v).dtype == torch.float32
    assert op.matvec_full(op.scatter(v).reshape(3, -1)).dtype == torch.float32
    # one noise per batch member: each row against its own dense matrix (float64 reference)
    tables = exp_table((4, 4), [2.0, 3.0]).double()
    noise = torch.tensor([0.05, 0.2], dtype=torch.float64)
    batched = MaskedGridOperator(GridKernelOperator(tables, grid_dims=2), mask, noise)
    w = torch.randn(
        2, op.index.numel(), generator=torch.Generator().manual_seed(11), dtype=torch.float64
    )
    ref = (_masked_dense(batched) @ w[..., None])[..., 0]
    assert torch.allclose(batched.matvec(w), ref, rtol=1e-12, atol=1e-12)
