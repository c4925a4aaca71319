"""The grid covariance as GPyTorch ``LinearOperator`` s (FFT matmul).

:class:`GridKernelOperator` (``K``, block-Toeplitz) and :class:`MaskedGridOperator`
(``K_oo + s^2 I``) are the :mod:`gpdip.gp.gridcov` cores with ``linear_operator``'s
interface (batching, indexing, solves and log-determinants through GPyTorch): use them
with GPyTorch; the inpainting path uses the cores directly.
"""

from __future__ import annotations

import math

import torch
from linear_operator.operators import LinearOperator
from linear_operator.utils.getitem import _is_noop_index
from torch import Tensor

from gpdip.gp.gridcov import GridCovariance, MaskedGridCovariance


class GridKernelOperator(GridCovariance, LinearOperator):
    """The ``(*batch, HW, HW)`` covariance of a whole grid from its kernel table.

    ``K[b, i, j] = (T[b, c + p_i - p_j] + T[b, c - p_i + p_j]) / 2`` with ``p_i`` the
    row-major pixel coordinates and ``c`` the table centre: the symmetric part of the
    table (a kernel table is symmetric, so this is the table itself).

    Args:
        table: ``(*batch, 2H-1, 2W-1)`` (or ``(*batch, 2N-1)``) kernel table; may
            require grad.
        dtype: working precision of the FFTs (default: the table's).
        grid_dims: number of trailing table axes that are grid axes (1 or 2); default
            ``table.dim()``, i.e. no batch.  Needed (and kept) for batched tables.

    Matmul costs two FFTs of the padded grid per batch member; the operator is symmetric.
    The table is split into a compact part and a periodic far field
    (:mod:`gpdip.gp.support`), so the padded grid is ``S + R`` rather than ``2S - 1``.
    """

    def __init__(
        self, table: Tensor, dtype: torch.dtype | None = None, grid_dims: int | None = None
    ):
        GridCovariance.__init__(self, table, dtype, grid_dims)
        LinearOperator.__init__(self, table, dtype=dtype, grid_dims=self.grid_dims)

    def _matmul(self, rhs: Tensor) -> Tensor:
        # rhs: (..., n, k) -> columns as grids (..., k, H, W); the k axis sits between the
        # batch and the grid, so the spectrum gets a singleton axis there
        xs = rhs.mT.reshape(*rhs.shape[:-2], rhs.shape[-1], *self.grid_size)
        spectrum = self.spectrum.unsqueeze(-1 - self.grid_dims)
        column = self.far_column
        column = None if column is None else column.unsqueeze(-1 - self.grid_dims)
        ys = self._grid_matmul(spectrum, column, xs)
        return ys.reshape(*ys.shape[: ys.dim() - self.grid_dims], self.n).mT

    def _size(self) -> torch.Size:
        return torch.Size((*self.table_batch_shape, self.n, self.n))

    def _transpose_nonbatch(self) -> GridKernelOperator:
        return self

    def _expand_batch(self, batch_shape: torch.Size | list[int]) -> GridKernelOperator:
        table = self.table.expand(*batch_shape, *self.table.shape[-self.grid_dims :])
        return GridKernelOperator(table, **self._kwargs)

    def _diagonal(self) -> Tensor:
        centre: tuple = (..., *[s - 1 for s in self.grid_size])
        return self.table[centre][..., None].expand(*self.table_batch_shape, self.n)

    def _get_indices(self, row_index: Tensor, col_index: Tensor, *batch_indices: Tensor) -> Tensor:
        # entry (i, j) is the table at offset p_i - p_j, symmetrised: no matmul needed
        pos, neg = [], []
        for axis in range(self.grid_dims):
            stride = math.prod(self.grid_size[axis + 1 :])
            side = self.grid_size[axis]
            off = (
                torch.div(row_index, stride, rounding_mode="floor") % side
                - torch.div(col_index, stride, rounding_mode="floor") % side
            )
            pos.append(side - 1 + off)
            neg.append(side - 1 - off)
        return 0.5 * (self.table[(*batch_indices, *pos)] + self.table[(*batch_indices, *neg)])


class MaskedGridOperator(MaskedGridCovariance, LinearOperator):
    """``K_oo + s^2 I``: the observed-pixel block of a grid covariance plus noise.

    Args:
        base: the full-grid :class:`GridKernelOperator` (possibly batched).
        mask: bool tensor of shape ``size``; True = observed.  One mask for the batch.
        noise: noise variance ``s^2``: a scalar tensor, or one per batch member
            (broadcastable to ``base.batch_shape``).
    """

    def __init__(self, base: GridKernelOperator, mask: Tensor, noise: Tensor):
        mask = mask.bool()  # LinearOperator.to()/type() cast every argument: undo it here
        noise = torch.as_tensor(noise)
        MaskedGridCovariance.__init__(self, base, mask, noise)
        LinearOperator.__init__(self, base, mask, noise)
        self.base: GridKernelOperator = base

    def _noise_batch(self) -> Tensor:
        """The noise with the operator's batch shape (a broadcast view)."""
        return self.noise.expand(self.base.batch_shape)

    def _matmul(self, rhs: Tensor) -> Tensor:
        # rhs (*batch, n_obs, k): columns as grids (*batch, k, H, W) through the base's matmul
        grids = self.scatter(rhs.mT).reshape(*rhs.shape[:-2], rhs.shape[-1], self.base.n)
        kx = self.base._matmul(grids.mT)[..., self.index, :]
        return kx + self._noise_batch()[..., None, None] * rhs

    def _size(self) -> torch.Size:
        return torch.Size((*self.base.batch_shape, self.index.numel(), self.index.numel()))

    def _transpose_nonbatch(self) -> MaskedGridOperator:
        return self

    def _diagonal(self) -> Tensor:
        return self.base._diagonal()[..., self.index] + self._noise_batch()[..., None]

    # the mask is shared by the batch: batch operations act on the base and the noise only
    def _expand_batch(self, batch_shape: torch.Size | list[int]) -> MaskedGridOperator:
        return MaskedGridOperator(
            self.base._expand_batch(batch_shape), self.mask_grid, self.noise.expand(batch_shape)
        )

    def _unsqueeze_batch(self, dim: int) -> MaskedGridOperator:
        return MaskedGridOperator(
            self.base._unsqueeze_batch(dim), self.mask_grid, self._noise_batch().unsqueeze(dim)
        )

    def _permute_batch(self, *dims: int) -> MaskedGridOperator:
        return MaskedGridOperator(
            self.base._permute_batch(*dims), self.mask_grid, self._noise_batch().permute(*dims)
        )

    def _getitem(self, row_index, col_index, *batch_indices) -> LinearOperator:
        if _is_noop_index(row_index) and _is_noop_index(col_index) and batch_indices:
            base = self.base._getitem(row_index, col_index, *batch_indices)
            return MaskedGridOperator(base, self.mask_grid, self._noise_batch()[batch_indices])
        return super()._getitem(row_index, col_index, *batch_indices)

    def _get_indices(self, row_index: Tensor, col_index: Tensor, *batch_indices: Tensor) -> Tensor:
        k = self.base._get_indices(self.index[row_index], self.index[col_index], *batch_indices)
        noise = self._noise_batch()[batch_indices] if batch_indices else self.noise
        return k + noise * (row_index == col_index)
