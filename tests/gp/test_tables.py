"""The gpytorch-free kernel tables (gpdip.gp.tables) against the GPyTorch kernels.

Both compute their tables with the same functions, so the reference here is the
GPyTorch kernel's *own evaluation* ``k(x, x')`` on pixel coordinates (its ``forward``,
an independent path: covar_dist / table lookup), not its ``table``.
"""

from __future__ import annotations

import pytest
import torch

from gpdip.errors import GpdipError
from gpdip.gp.grid import dense_from_table, grid_coordinates
from gpdip.gp.hyper import fit_hyperparameters
from gpdip.gp.tables import DIPGridTable, IsotropicGridTable, make_table


@pytest.mark.parametrize(
    "table",
    [
        IsotropicGridTable("rbf", 2.5),
        IsotropicGridTable("matern52", 1.7, fixed=True),
        DIPGridTable("conv-d2"),
        DIPGridTable("conv-d2", learn=("sigma",), init={"sigma": 1.5}),
    ],
)
def test_table_matches_gpytorch_forward(table):
    table.outputscale = 0.7
    size = (6, 7)
    kernel = table.to_gpytorch()
    x = grid_coordinates(size)
    with torch.no_grad():
        ref = kernel(x, x).to_dense()
    # GPyTorch's covar_dist expands |x - y|^2 = |x|^2 + |y|^2 - 2xy: ~4e-8 absolute error in
    # the distances on these coordinates, so the isotropic kernels agree to ~1e-7 only
    tol = 1e-12 if isinstance(table, DIPGridTable) else 1e-6
    torch.testing.assert_close(dense_from_table(table.table(size), size), ref, rtol=tol, atol=tol)
    # what the fit may search survives the conversion
    searched = [
        p.requires_grad for p in (getattr(table, "raw_lengthscale", None),) if p is not None
    ]
    if searched:
        assert kernel.raw_lengthscale.requires_grad == searched[0]
    for name in table.learn:
        assert float(getattr(kernel, f"log_{name}")) == pytest.approx(
            float(getattr(table, f"log_{name}"))
        )


def test_fit_gives_the_same_answer_on_either_kernel():
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(20, 20, generator=gen, dtype=torch.float64)
    mask = torch.rand(20, 20, generator=gen) < 0.6
    light, heavy = make_table("matern52"), make_table("matern52").to_gpytorch()
    a = fit_hyperparameters(light, img, mask, crop=10, n_crops=4)
    b = fit_hyperparameters(heavy, img, mask, crop=10, n_crops=4)
    for key in ("noise", "outputscale", "lengthscale", "log_marginal_likelihood"):
        assert a[key] == pytest.approx(b[key], rel=1e-9)


def test_make_table_errors():
    with pytest.raises(GpdipError, match="lengthscale"):
        make_table("rbf", -1.0)
    with pytest.raises(GpdipError):
        make_table("no-such-architecture").table((4, 4))
