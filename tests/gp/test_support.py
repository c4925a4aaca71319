"""The compact + periodic far-field split of kernel tables (gpdip.gp.support).

Reference: the dense float64 covariance ``K[i, j] = T[p_i - p_j]`` of the same table.
The split must give the same ``K x`` to rounding, and must actually shrink the FFT
for the DIP kernels whose far field is periodic (else the speed-up silently vanished).
"""

from __future__ import annotations

import itertools

import pytest
import scipy.fft
import torch

from gpdip import compile_kernel
from gpdip.gp.grid import crop_table, dense_from_table, next_fast_len
from gpdip.gp.support import FarFieldSplit, periodic_matmul, split_far_field
from gpdip.gp.toeplitz import GridKernelOperator


def _dense_matmul(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    size = tuple(x.shape[1:])
    dense = dense_from_table(table, size)
    return (x.reshape(x.shape[0], -1) @ dense.T).reshape(x.shape)


@pytest.mark.parametrize(
    ("arch", "size", "period", "radius"),
    [
        ("unet2", (48, 48), 4, 9),  # two scales: phase period 4, receptive radius 9
        ("unet2", (37, 45), 4, 9),  # non-square, sides not multiples of the period
        ("conv-d3-s2", (40, 40), 1, 21),  # stationary: a constant far field
        ("ae-d2", (50, 50), 1, None),
    ],
)
def test_split_matmul_matches_dense(arch, size, period, radius):
    table = crop_table(compile_kernel(arch, max(size)).double(), size)
    op = GridKernelOperator(table)
    assert op.split.period == (period,) * 2
    if radius is not None:
        assert op.split.radius == (radius,) * 2
    # the point of the split: a circulant of S + R, not 2S - 1
    assert op.shape_fft == tuple(
        next_fast_len(s + r) for s, r in zip(size, op.split.radius, strict=True)
    )
    assert all(m < next_fast_len(2 * s - 1) for m, s in zip(op.shape_fft, size, strict=True))
    x = torch.randn(3, *size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = _dense_matmul(table, x)
    assert float((op.grid_matmul(x) - ref).abs().max()) <= 1e-12 * float(ref.abs().max())


def test_split_1d_and_batched():
    gen = torch.Generator().manual_seed(1)
    table_1d = compile_kernel("unet2", 70, dims=1).double()
    op = GridKernelOperator(table_1d)
    assert op.split.period == (4,)
    x = torch.randn(2, 70, generator=gen, dtype=torch.float64)
    ref = _dense_matmul(table_1d, x)
    assert float((op.grid_matmul(x) - ref).abs().max()) <= 1e-12 * float(ref.abs().max())
    # a batch of two scaled tables shares one split; each member has its own far column
    table_2d = crop_table(compile_kernel("unet2", 30).double(), (30, 30))
    batch = torch.stack([table_2d, 3.0 * table_2d])
    bop = GridKernelOperator(batch, grid_dims=2)
    assert bop.split.period == (4, 4)
    x2 = torch.randn(2, 30, 30, generator=gen, dtype=torch.float64)
    out = bop.grid_matmul(x2)
    for b in range(2):
        ref = _dense_matmul(batch[b], x2[b : b + 1])[0]
        assert float((out[b] - ref).abs().max()) <= 1e-12 * float(ref.abs().max())


def test_no_split_without_far_field():
    # an exponential kernel never becomes periodic: no split, the full 2S - 1 embedding
    offs = torch.arange(-19, 20, dtype=torch.float64)
    r = (offs[:, None] ** 2 + offs[None, :] ** 2).sqrt()
    split = split_far_field(torch.exp(-r / 30.0), 2)
    assert split == FarFieldSplit(None, (19, 19))


def test_tables_that_require_grad_keep_the_full_embedding():
    table = crop_table(compile_kernel("unet2", 24).double(), (24, 24)).requires_grad_(True)
    op = GridKernelOperator(table)
    assert op.split.period is None  # every entry must receive its gradient
    x = torch.randn(1, 24, 24, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    weights = torch.randn(24, 24, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    (op.grid_matmul(x) * weights).sum().backward()
    # reference: the operator's symmetrised dense form (T[d] + T[-d]) / 2, differentiated
    ref_table = table.detach().clone().requires_grad_(True)
    dense = dense_from_table(ref_table, (24, 24))
    kx = 0.5 * (dense + dense.T) @ x.reshape(-1)
    (kx * weights.reshape(-1)).sum().backward()
    assert table.grad is not None and ref_table.grad is not None
    torch.testing.assert_close(table.grad, ref_table.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("size", "period"), [((7, 8), 3), ((8, 12), 4), ((6, 6), 2)])
def test_periodic_matmul_against_a_loop(size, period):
    """Plain, and added in one pass to a strided crop (``add_to``: P divides both sides
    for (8, 12) and (6, 6), the broadcast path; (7, 8) takes the tiled one)."""
    gen = torch.Generator().manual_seed(3)
    column = torch.randn(period, period, generator=gen, dtype=torch.float64)
    x = torch.randn(2, *size, generator=gen, dtype=torch.float64)
    ref = torch.zeros_like(x)
    for i0, i1, j0, j1 in itertools.product(*[range(s) for s in size * 2]):
        ref[:, i0, i1] += column[(i0 - j0) % period, (i1 - j1) % period] * x[:, j0, j1]
    out = periodic_matmul(column, x, size)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)
    padded = torch.randn(2, size[0] + 5, size[1] + 3, generator=gen, dtype=torch.float64)
    base = padded[:, : size[0], : size[1]]  # a strided view, as an FFT crop is
    summed = periodic_matmul(column, x, size, add_to=base)
    torch.testing.assert_close(summed, base + ref, rtol=1e-13, atol=1e-13)


def test_next_fast_len_matches_scipy():
    assert [next_fast_len(n) for n in range(1, 3000)] == [
        scipy.fft.next_fast_len(n, real=True) for n in range(1, 3000)
    ]


@pytest.mark.parametrize(("arch", "size"), [("unet2", (30, 30)), ("conv-d3-s2", (23, 37))])
def test_max_eigenvalue_bound_bounds_the_dense_spectrum(arch, size):
    # the NTK predictor's stability check relies on this being an upper bound (Weyl +
    # interlacing, see the docstring); measured ratios are 1.003-1.14 on these cases
    table = crop_table(compile_kernel(arch, max(size)).double(), size)
    op = GridKernelOperator(table)
    assert op.split.period is not None
    lam_max = float(torch.linalg.eigvalsh(dense_from_table(table, size)).max())
    assert lam_max <= op.max_eigenvalue_bound() <= 1.2 * lam_max
