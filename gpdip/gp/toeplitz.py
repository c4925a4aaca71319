"""Block-Toeplitz covariance of a grid as a ``LinearOperator`` (FFT matmul).

For a stationary kernel on an ``H x W`` grid the covariance ``K`` is
block-Toeplitz with Toeplitz blocks (BTTB).  Embedding its table in a circulant
of period ``(M, N) >= (2H-1, 2W-1)`` makes ``K x`` an exact cyclic convolution::

    K x = crop( irfft2( rfft2(c) * rfft2(pad(x)) ) ),   c = roll(pad(table))

in ``O(MN log MN)`` time and ``O(MN)`` memory instead of ``O((HW)^2)``.
:class:`MaskedGridOperator` is the observed-pixel block ``K_oo + s^2 I`` as a
view (scatter to the grid, multiply, gather), never materialised.
"""

from __future__ import annotations

import scipy.fft
import torch
from linear_operator.operators import LinearOperator
from torch import Tensor

from gpdip.gp.grid import Size, table_grid_size


def fft_shape(size: Size) -> Size:
    """Circulant period used for matmuls: smallest FFT-friendly length >= 2S-1."""
    return tuple(scipy.fft.next_fast_len(2 * s - 1, real=True) for s in size)


def embed_table(table: Tensor, shape: Size) -> Tensor:
    """First column ``c`` of the circulant of period ``shape`` holding the table.

    ``c[dy mod M, dx mod N] = table[H-1+dy, W-1+dx]`` for ``|dy| < H, |dx| < W``,
    zero elsewhere (these entries never meet the grid when ``M >= 2H-1``).
    """
    size = table_grid_size(table)
    c = table.new_zeros(shape)
    c[tuple(slice(0, t) for t in table.shape)] = table
    return torch.roll(c, shifts=tuple(-(s - 1) for s in size), dims=tuple(range(len(size))))


def circulant_spectrum(c: Tensor) -> Tensor:
    """Eigenvalues of the (symmetric) circulant with first column ``c`` (real rfft)."""
    return torch.fft.rfftn(c, dim=tuple(range(c.dim()))).real


def toeplitz_matmul(spectrum: Tensor, x: Tensor, size: Size, shape: Size) -> Tensor:
    """``K x`` for grids ``x`` of shape ``(..., *size)`` through the circulant spectrum."""
    dims = tuple(range(-len(size), 0))
    xf = torch.fft.rfftn(x, s=shape, dim=dims)
    y = torch.fft.irfftn(xf * spectrum, s=shape, dim=dims)
    return y[(..., *[slice(0, s) for s in size])]


class GridKernelOperator(LinearOperator):
    """The ``(HW, HW)`` covariance of a whole grid from its kernel table.

    Args:
        table: ``(2H-1, 2W-1)`` (or ``(2N-1,)``) kernel table; may require grad.
        dtype: working precision of the FFTs (default: the table's).

    Matmul costs two FFTs of the padded grid; the operator is symmetric.
    """

    def __init__(self, table: Tensor, dtype: torch.dtype | None = None):
        super().__init__(table, dtype=dtype)
        self.table = table
        self.grid_size: Size = table_grid_size(table)
        self.shape_fft: Size = fft_shape(self.grid_size)
        spectrum = circulant_spectrum(embed_table(table, self.shape_fft))
        # dtype=float32 halves FFT cost for loose tolerances; the spectrum is built in float64
        self.spectrum = spectrum.to(dtype) if dtype is not None else spectrum

    @property
    def n(self) -> int:
        return int(torch.tensor(self.grid_size).prod())

    def grid_matmul(self, x: Tensor) -> Tensor:
        """``K x`` with ``x`` of shape ``(..., H, W)``."""
        return toeplitz_matmul(self.spectrum, x, self.grid_size, self.shape_fft)

    def _matmul(self, rhs: Tensor) -> Tensor:
        # rhs: (..., n, k) -> columns as grids (..., k, H, W)
        xs = rhs.transpose(-1, -2).reshape(*rhs.shape[:-2], rhs.shape[-1], *self.grid_size)
        ys = self.grid_matmul(xs)
        return ys.reshape(*rhs.shape[:-2], rhs.shape[-1], self.n).transpose(-1, -2)

    def _size(self) -> torch.Size:
        return torch.Size((self.n, self.n))

    def _transpose_nonbatch(self) -> GridKernelOperator:
        return self

    def _diagonal(self) -> Tensor:
        centre = tuple(s - 1 for s in self.grid_size)
        return self.table[centre].expand(self.n)


class MaskedGridOperator(LinearOperator):
    """``K_oo + s^2 I``: the observed-pixel block of a grid covariance plus noise.

    Args:
        base: the full-grid :class:`GridKernelOperator`.
        mask: bool tensor of shape ``size``; True = observed.
        noise: noise variance ``s^2`` (tensor scalar).
    """

    def __init__(self, base: GridKernelOperator, mask: Tensor, noise: Tensor):
        super().__init__(base, mask, noise)
        self.base = base
        self.mask = mask.reshape(-1)
        self.index = torch.nonzero(self.mask).reshape(-1)
        self.noise = noise
        self._fmask: dict[torch.dtype, Tensor] = {}  # float copies of the mask, per dtype

    def scatter(self, v: Tensor) -> Tensor:
        """Observed values ``(..., n_obs)`` -> full grid ``(..., H, W)`` with zeros."""
        full = v.new_zeros(*v.shape[:-1], self.base.n)
        full[..., self.index] = v
        return full.reshape(*v.shape[:-1], *self.base.grid_size)

    def gather(self, g: Tensor) -> Tensor:
        """Full grid ``(..., H, W)`` -> observed values ``(..., n_obs)``."""
        return g.reshape(*g.shape[: g.dim() - len(self.base.grid_size)], -1)[..., self.index]

    def matvec(self, v: Tensor) -> Tensor:
        """``(K_oo + s^2 I) v`` for a batch of vectors ``v`` of shape ``(..., n_obs)``."""
        return self.gather(self.base.grid_matmul(self.scatter(v))) + self.noise * v

    def matvec_full(self, v: Tensor) -> Tensor:
        """The same operator on full-grid vectors ``(..., H*W)`` that vanish off the mask.

        ``M * (K v) + s^2 v``: no index scatter/gather, so CG can run on the grid directly
        (inner products are unchanged because every iterate vanishes off the mask).
        """
        g = v.reshape(*v.shape[:-1], *self.base.grid_size)
        kv = self.base.grid_matmul(g).reshape(v.shape)
        if v.dtype not in self._fmask:
            self._fmask[v.dtype] = self.mask.to(v.dtype)
        return self._fmask[v.dtype] * kv + float(self.noise) * v

    def _matmul(self, rhs: Tensor) -> Tensor:
        return self.matvec(rhs.transpose(-1, -2)).transpose(-1, -2)

    def _size(self) -> torch.Size:
        return torch.Size((self.index.numel(), self.index.numel()))

    def _transpose_nonbatch(self) -> MaskedGridOperator:
        return self


def crop_table_for_period(table: Tensor, size: Size) -> Tensor:
    """T. Chan's circulant of period ``size``: ``c_k = ((n-k) K(k) + k K(k-n)) / n`` per axis."""
    c = table
    for axis, n in enumerate(size):
        k = torch.arange(n, device=table.device)
        pos = c.index_select(axis, n - 1 + k)
        neg = c.index_select(axis, (k - 1).clamp_min(0))  # offset k - n; weight 0 at k = 0
        shape = [1] * c.dim()
        shape[axis] = n
        w = (k.to(table.dtype) / n).reshape(shape)
        c = (1 - w) * pos + w * neg
    return c
