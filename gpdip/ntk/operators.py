"""The NTK Gram matrix ``Θ`` of a grid as an FFT operator, for either boundary.

A kernel table (layout of :mod:`gpdip.gp.grid`: ``table[H-1+dy, W-1+dx] = θ(dy, dx)``)
defines ``Θ`` on the pixels of an ``H x W`` grid (or an ``N``-sample signal):

* ``boundary="toeplitz"`` (default): the non-periodic grid of the GP engine,
  ``Θ_ij = θ(p_i - p_j)``; block-Toeplitz, applied through its circulant embedding
  (:class:`gpdip.gp.toeplitz.GridKernelOperator`).
* ``boundary="circular"``: a circular-padded network on the torus of the image's own
  grid.  ``Θ`` is the circulant whose first column is the table at the minimal image
  of each torus offset (:func:`torus_column`): ``c[k] = θ(k)`` for ``k < S/2`` and
  ``θ(k - S)`` for ``k > S/2``, per axis; at ``k = S/2`` of an even side, where the
  plane table holds two values ``θ(±S/2)`` for one torus offset, their mean.  This is
  the torus network's kernel when no receptive field meets its own wrap-around (each
  side exceeds twice the network's correlation radius), the case in which those values
  agree; otherwise it is a stationary approximation of it.

:class:`ObservedBlock` gives ``Θ_oo v`` and ``Θ_{:,o} v`` from one grid product, and
:func:`lambda_max_bounds` brackets ``λ_max(Θ_oo)`` for the GD stability bound.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.grid import Size, grid_coordinates, table_grid_size
from gpdip.gp.gridcov import circulant_spectrum
from gpdip.gp.toeplitz import GridKernelOperator

BOUNDARIES = ("toeplitz", "circular")
#: Relative tolerance on negative eigenvalues of a wrapped (circular) table.
PSD_TOL = 1e-10


class GridOperator(Protocol):
    """Anything that multiplies grids ``(..., *grid_size)`` by a symmetric ``Θ``."""

    grid_size: Size

    def grid_matmul(self, x: Tensor) -> Tensor: ...

    def max_eigenvalue_bound(self) -> float: ...


class CircularGridOperator:
    """``Θ`` on the torus of the table's own grid: a circulant applied by FFT.

    Args:
        table: ``(2H-1, 2W-1)`` or ``(2N-1,)`` kernel table (float64).
        check_psd: raise :class:`GpdipError` when the wrapped table is not positive
            semi-definite (most negative eigenvalue below ``-PSD_TOL * max``).
    """

    def __init__(self, table: Tensor, check_psd: bool = True):
        self.grid_size: Size = table_grid_size(table)
        self.column = torus_column(table)
        self.spectrum = circulant_spectrum(self.column)
        lo, hi = float(self.spectrum.min()), float(self.spectrum.max())
        if check_psd and lo < -PSD_TOL * max(hi, 0.0):
            raise GpdipError(
                f"boundary='circular': the table wrapped onto the {self.grid_size} torus is not "
                f"positive semi-definite (most negative eigenvalue {lo:.3e}, max {hi:.3e}); "
                "the kernel's receptive field wraps onto itself on a grid this small"
            )

    def grid_matmul(self, x: Tensor) -> Tensor:
        """``Θ x`` for grids ``x`` of shape ``(..., *grid_size)`` (cyclic convolution)."""
        dims = tuple(range(-len(self.grid_size), 0))
        xf = torch.fft.rfftn(x, dim=dims)
        return torch.fft.irfftn(xf * self.spectrum, s=self.grid_size, dim=dims)

    def max_eigenvalue_bound(self) -> float:
        """``lambda_max(Θ)`` on the torus, exactly: the largest circulant eigenvalue."""
        return float(self.spectrum.max())

    def sqrt_matmul(self, x: Tensor) -> Tensor:
        """``Θ^{1/2} x`` (negative rounding eigenvalues clamped to 0): exact torus samples."""
        dims = tuple(range(-len(self.grid_size), 0))
        root = self.spectrum.clamp_min(0.0).sqrt()
        return torch.fft.irfftn(torch.fft.rfftn(x, dim=dims) * root, s=self.grid_size, dim=dims)


def torus_column(table: Tensor) -> Tensor:
    """First column of the circulant ``Θ`` of the table's own grid on the torus (module doc).

    Per axis of side ``S``: offset ``k`` takes ``θ`` at its minimal image, ``k`` or
    ``k - S``; for ``k = S/2`` (even ``S``) the mean of ``θ(S/2)`` and ``θ(-S/2)``.  Done
    axis by axis, the corners average all their minimal images, and ``c[-k] = c[k]``.
    """
    c = table
    for axis, side in enumerate(table_grid_size(table)):
        k = torch.arange(side, device=table.device)
        off = torch.where(2 * k <= side, k, k - side)
        wrapped = c.index_select(axis, side - 1 + off)
        if side % 2 == 0:
            half = [slice(None)] * c.dim()
            half[axis] = slice(side // 2, side // 2 + 1)
            other = c.index_select(axis, torch.tensor([side - 1 - side // 2], device=c.device))
            wrapped[tuple(half)] = 0.5 * (wrapped[tuple(half)] + other)
        c = wrapped
    return c


def check_boundary(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise GpdipError(f"boundary: expected one of {', '.join(BOUNDARIES)}, got {boundary!r}")
    return boundary


def grid_operator(table: Tensor, boundary: str = "toeplitz") -> GridOperator:
    """The FFT operator of ``Θ`` on the table's grid for ``boundary`` (see module doc)."""
    table = table.detach().to(torch.float64)
    if check_boundary(boundary) == "circular":
        return CircularGridOperator(table)
    return GridKernelOperator(table)


def dense_theta(table: Tensor, boundary: str = "toeplitz") -> Tensor:
    """Dense ``(n, n)`` float64 ``Θ`` of the table's grid (row-major pixels); small grids only."""
    table = table.detach().to(torch.float64)
    size = table_grid_size(table)
    coords = grid_coordinates(size, dtype=torch.long, device=table.device)
    diff = coords[:, None, :] - coords[None, :, :]
    if check_boundary(boundary) == "circular":
        wrapped = diff % torch.tensor(size, device=table.device)
        return torus_column(table)[tuple(wrapped[..., d] for d in range(len(size)))]
    centre = torch.tensor([s - 1 for s in size], device=table.device)
    return table[tuple((diff + centre)[..., d] for d in range(len(size)))]


class ObservedBlock:
    """``Θ_oo`` and ``Θ_{:,o}`` of the observed pixels ``o`` of a grid, from one FFT product.

    Args:
        op: the grid operator of ``Θ``.
        mask: bool tensor of shape ``op.grid_size``; True = observed.
    """

    def __init__(self, op: GridOperator, mask: Tensor):
        self.op = op
        self.grid_size = op.grid_size
        self.n = int(torch.tensor(self.grid_size).prod())
        self.mask = mask.reshape(-1)
        self.index = torch.nonzero(self.mask).reshape(-1)
        self.n_obs = int(self.index.numel())
        self.all_observed = self.n_obs == self.n

    def scatter(self, v: Tensor) -> Tensor:
        """Observed values ``(B, n_obs)`` -> grids ``(B, *grid_size)``, zero off the mask."""
        if self.all_observed:
            return v.reshape(v.shape[0], *self.grid_size)
        full = v.new_zeros(v.shape[0], self.n)
        full[:, self.index] = v
        return full.reshape(v.shape[0], *self.grid_size)

    def gather(self, full: Tensor) -> Tensor:
        """Flat grids ``(B, n)`` -> observed values ``(B, n_obs)``."""
        return full if self.all_observed else full[:, self.index]

    def apply(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """``(Θ_{:,o} v, Θ_oo v)``, shapes ``(B, n)`` and ``(B, n_obs)``, for ``v (B, n_obs)``."""
        full = self.op.grid_matmul(self.scatter(v)).reshape(v.shape[0], self.n)
        return full, self.gather(full)


def lambda_max_bounds(block: ObservedBlock, table: Tensor, boundary: str) -> tuple[float, float]:
    """Cheap bracket ``lower <= λ_max(Θ_oo) <= upper`` from two grid products.

    ``lower`` is the Rayleigh quotient of the observed indicator, ``1ᵀ Θ_oo 1 / n_obs``.
    ``upper`` is the smaller of Gershgorin's bound, ``max_{i in o} Σ_{j in o} |Θ_ij|``
    (one product of the ``|θ|`` operator with the mask), and ``λ_max`` of the circulant
    holding ``Θ`` (its embedding, or itself on the torus), which bounds every principal
    submatrix by Cauchy interlacing.  DIP kernels have a large constant part, for which
    Gershgorin's bound is nearly tight.
    """
    ones = torch.ones(1, block.n_obs, dtype=torch.float64)
    row_sums = block.apply(ones)[1]
    lower = float(row_sums.sum()) / block.n_obs
    table = table.detach().to(torch.float64)
    if bool((table >= 0).all()):  # |Θ| = Θ: the same product gives Gershgorin's bound
        gershgorin = float(row_sums.max())
    else:
        abs_op: GridOperator = (
            CircularGridOperator(table.abs(), check_psd=False)
            if boundary == "circular"
            else GridKernelOperator(table.abs())
        )
        abs_block = ObservedBlock(abs_op, block.mask.reshape(block.grid_size))
        gershgorin = float(abs_block.apply(ones)[1].max())
    return lower, min(gershgorin, block.op.max_eigenvalue_bound())
