"""Exact prior samples of a stationary GP on a grid by circulant embedding.

Dietrich & Newsam (1997), Wood & Chan (1994): embed the BTTB covariance ``K``
of the ``H x W`` grid in a symmetric circulant ``C`` of period ``(M, N)``; if
``C`` is positive semi-definite, ``x = C^{1/2} w`` with ``w ~ N(0, I)`` on the
torus and ``C^{1/2} = F^{-1} diag(sqrt(lambda)) F`` has covariance ``C``; its
restriction to the grid has covariance exactly ``K``.  Cost: one FFT pair of
the torus per sample.  When ``C`` has eigenvalues below ``-1e-10 max`` the
torus is enlarged (this needs the kernel at larger offsets: pass a callable
``size -> table`` or a bigger table), else :class:`GpdipError` reports the
most negative eigenvalue.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.grid import (
    Size,
    TableFn,
    as_size,
    crop_table,
    dense_from_table,
    next_fast_len,
    table_grid_size,
)
from gpdip.gp.gridcov import circulant_spectrum

#: Relative tolerance on negative embedding eigenvalues (``lambda_min >= -EIG_TOL * lambda_max``).
EIG_TOL = 1e-10


def periodic_embedding(table: Tensor, period: Size) -> Tensor:
    """First column of the circulant of ``period`` built from a table.

    ``c[k] = K(k)`` for ``k <= M // 2`` and ``K(k - M)`` above, per axis; needs
    the table to cover offsets up to ``M // 2`` (grid ``>= M // 2 + 1``).
    """
    grid = table_grid_size(table)
    c = table
    for axis, (g, m) in enumerate(zip(grid, period, strict=True)):
        if m // 2 > g - 1:
            raise GpdipError(
                f"kernel table covers offsets up to {g - 1} on axis {axis}; a circulant "
                f"of period {m} needs offsets up to {m // 2}"
            )
        k = torch.arange(m, device=table.device)
        off = torch.where(k <= m // 2, k, k - m)
        c = c.index_select(axis, g - 1 + off)
    return c


class CirculantSampler:
    """Draws exact prior samples on a grid; built once, sampled many times.

    Args:
        kernel: a kernel table (covering at least ``size``) or a callable
            ``size -> table``; a callable lets the torus grow when needed.
        size: grid size ``(H, W)`` or ``(N,)``.
        max_growth: how many times the torus may be enlarged (x1.5 per step).
    """

    def __init__(self, kernel: Tensor | TableFn, size: int | Size, max_growth: int = 4):
        self.size = as_size(size, 2 if not isinstance(kernel, Tensor) else kernel.dim())
        period = self._first_period(kernel)
        for attempt in range(max_growth + 1):
            table = self._table(kernel, tuple(m // 2 + 1 for m in period))
            lam = circulant_spectrum(periodic_embedding(table, period))
            lo, hi = float(lam.min()), float(lam.max())
            if lo >= -EIG_TOL * hi:
                break
            if not callable(kernel) and not self._fits(kernel, period, grow=True):
                attempt = max_growth  # a fixed table cannot grow further
            if attempt >= max_growth:
                raise GpdipError(
                    f"circulant embedding of period {period} is not positive semi-definite: "
                    f"most negative eigenvalue {lo:.3e} (max {hi:.3e}, tolerance "
                    f"-{EIG_TOL:g} x max); pass the kernel as a callable or a larger table "
                    "so the embedding can be padded"
                )
            period = tuple(next_fast_len(int(m * 1.5)) for m in period)
        self.period: Size = period
        self.sqrt_lam = lam.clamp_min(0.0).sqrt()
        self.min_eigenvalue = lo

    def _first_period(self, kernel: Tensor | TableFn) -> Size:
        fast = tuple(next_fast_len(2 * s) for s in self.size)
        if callable(kernel) or self._fits(kernel, fast):
            return fast
        return tuple(2 * s - 1 for s in self.size)  # minimal: offsets < S from the table

    def _fits(self, table: Tensor, period: Size, grow: bool = False) -> bool:
        if grow:
            period = tuple(next_fast_len(int(m * 1.5)) for m in period)
        grid = table_grid_size(table)
        return all(m // 2 <= g - 1 for g, m in zip(grid, period, strict=True))

    def _table(self, kernel: Tensor | TableFn, grid: Size) -> Tensor:
        if isinstance(kernel, Tensor):
            return crop_table(kernel, grid).detach()
        return kernel(grid).detach()

    def sample(self, n: int = 1, generator: torch.Generator | None = None) -> Tensor:
        """``n`` independent samples, shape ``(n, *size)``."""
        dims = tuple(range(-len(self.size), 0))
        w = torch.randn(
            (n, *self.period),
            generator=generator,
            dtype=self.sqrt_lam.dtype,
            device=self.sqrt_lam.device,
        )
        x = torch.fft.irfftn(torch.fft.rfftn(w, dim=dims) * self.sqrt_lam, s=self.period, dim=dims)
        return x[(..., *[slice(0, s) for s in self.size])]


def sample_prior(
    kernel: Tensor | TableFn,
    size: int | Size | None = None,
    n: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Exact prior samples ``(n, *size)`` by circulant embedding (see module doc)."""
    if size is None:
        if not isinstance(kernel, Tensor):
            raise GpdipError("sample_prior: size is required when kernel is a callable")
        size = table_grid_size(kernel)
    return CirculantSampler(kernel, size).sample(n, generator)


def sample_prior_dense(
    table: Tensor,
    size: Size | None = None,
    n: int = 1,
    generator: torch.Generator | None = None,
    jitter: float = 1e-10,
) -> Tensor:
    """Reference sampler for small grids: ``L w`` with ``L L^T = K + jitter max(K) I``."""
    size = size or table_grid_size(table)
    K = dense_from_table(table, size)
    eye = torch.eye(K.shape[0], dtype=K.dtype, device=K.device)
    L = torch.linalg.cholesky(K + jitter * K.diagonal().max() * eye)
    w = torch.randn((K.shape[0], n), generator=generator, dtype=K.dtype, device=K.device)
    return (L @ w).T.reshape(n, *size)


def callable_table(fn: Callable[[Size], Tensor]) -> TableFn:
    """Identity helper documenting the ``size -> table`` protocol (for type checkers)."""
    return fn
