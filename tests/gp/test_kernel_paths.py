"""DIPKernel's integer-offset lookup, and table/forward agreement of the ScaleKernel split."""

from __future__ import annotations

import gpytorch
import pytest
import torch

from gpdip import compile_kernel
from gpdip.errors import GpdipError
from gpdip.gp.grid import dense_from_table, grid_coordinates
from gpdip.gp.kernels import (
    DIPKernel,
    DIPUnit,
    Matern52Table,
    RBFTable,
    RBFUnit,
    interpolate_table,
    lookup_table,
    split_scale,
)


def test_lookup_on_grid_equals_dense_float64_table():
    # reference: the compiled table placed by dense_from_table (plain indexing), float64
    size = (7, 6)
    k = DIPKernel("unet2", outputscale=1.7).double()
    x = grid_coordinates(size)
    got = k(x, x).to_dense().detach()
    ref = k.outputscale.detach() * dense_from_table(compile_kernel("unet2", size).double())
    assert got.dtype == torch.float64
    assert torch.allclose(got, ref, rtol=1e-15, atol=0)


def test_lookup_matches_interpolation_on_scattered_integer_points(gen):
    table = torch.randn(13, 9, generator=gen, dtype=torch.float64)  # offsets |dy|<=6, |dx|<=4
    x1 = torch.stack(
        [torch.randint(-3, 4, (30,), generator=gen), torch.randint(0, 5, (30,), generator=gen)], -1
    ).double()
    x2 = torch.stack(
        [torch.randint(-3, 4, (20,), generator=gen), torch.randint(0, 5, (20,), generator=gen)], -1
    ).double()
    got = lookup_table(table, x1, x2)
    ref = interpolate_table(table, x1[:, None, :] - x2[None, :, :])
    # interpolation at integer offsets adds zero-weight neighbours only
    assert torch.allclose(got, ref, rtol=1e-15, atol=1e-15)
    # and both equal an explicit loop over pairs
    i, j = 11, 7
    d = (x1[i] - x2[j]).long()
    assert got[i, j] == table[6 + d[0], 4 + d[1]]
    diag = lookup_table(table, x1[:20], x2, diag=True)
    assert torch.equal(diag, got[:20].diagonal())


def test_forward_paths_agree_and_fractional_inputs_interpolate(gen):
    k = DIPKernel("unet2", dims=1, outputscale=0.8).double()
    x = torch.arange(9, dtype=torch.float64)[:, None]
    lookup = k(x, x).to_dense().detach()
    # requires_grad on the inputs selects the differentiable interpolating path
    interp = k(x.clone().requires_grad_(True), x).to_dense().detach()
    assert torch.allclose(lookup, interp, rtol=1e-14, atol=1e-15)
    # half-integer offsets: the mean of the two neighbouring table entries (1-D linear)
    t = k.outputscale.detach() * compile_kernel("unet2", (9,), dims=1).double()  # centre 8
    half = k(x[:4] + 0.5, x[:4], diag=True).detach()
    assert torch.allclose(half, 0.5 * (t[8] + t[9]).expand(4), rtol=1e-14)


def test_lookup_batched_inputs_and_errors(gen):
    k = DIPKernel("unet2").double()
    x = torch.randint(0, 6, (3, 10, 2), generator=gen).double()
    batched = k(x).to_dense().detach()
    for b in range(3):
        assert torch.allclose(batched[b], k(x[b]).to_dense().detach(), rtol=1e-15, atol=0)
    empty = k(torch.zeros(0, 2, dtype=torch.float64), x[0]).to_dense()
    assert empty.shape == (0, 10)
    with pytest.raises(GpdipError, match="2 columns"):
        k(torch.zeros(4, 3, dtype=torch.float64)).to_dense()


def test_dip_learned_parameters_reachable_and_differentiable():
    k = DIPKernel("unet2", learn=("sigma",), init={"sigma": 1.5}).double()
    assert float(k.log_sigma.exp()) == pytest.approx(1.5)
    assert k.log_sigma is k.base_kernel.log_sigma
    x = grid_coordinates((4, 4))
    k(x, x).to_dense().sum().backward()
    assert k.log_sigma.grad is not None and torch.isfinite(k.log_sigma.grad)


@pytest.mark.parametrize("cls", [RBFTable, Matern52Table])
def test_isotropic_ard_batched_table_matches_forward(cls):
    # table(size) and forward on grid coordinates are two implementations of one kernel
    k = cls(2.0, 0.5, ard_num_dims=2, batch_shape=torch.Size([2])).double()
    k.lengthscale = torch.tensor([[[1.5, 3.0]], [[0.7, 2.2]]], dtype=torch.float64)
    k.outputscale = torch.tensor([0.5, 2.0], dtype=torch.float64)
    size = (4, 3)
    table = k.table(size).detach()
    assert table.shape == (2, 7, 5)
    x = grid_coordinates(size)
    dense = k(x, x).to_dense().detach()
    for b in range(2):
        assert torch.allclose(dense[b], dense_from_table(table[b]), rtol=1e-12, atol=1e-14)


def test_scale_composition():
    k = RBFTable(1.2, 0.3).double()
    assert isinstance(k, gpytorch.kernels.ScaleKernel)
    base, scale = split_scale(k)
    assert isinstance(base, RBFUnit) and float(scale) == pytest.approx(0.3)
    assert float(k.lengthscale) == pytest.approx(1.2) and k.has_lengthscale
    assert k.raw_lengthscale is base.raw_lengthscale
    names = {n for n, _ in k.named_parameters()}
    assert names == {"raw_outputscale", "base_kernel.raw_lengthscale"}  # no duplicates
    unit = DIPUnit("unet2")
    assert split_scale(unit)[0] is unit and float(split_scale(unit)[1]) == 1.0
    assert not DIPKernel("unet2").has_lengthscale
