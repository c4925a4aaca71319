"""The grid covariance as FFT matmuls, without ``linear_operator``: the CG path's core.

For a stationary kernel on an ``H x W`` grid the covariance ``K`` is block-Toeplitz with
Toeplitz blocks (BTTB).  Embedding its table in a circulant of period
``(M, N) >= (2H-1, 2W-1)`` makes ``K x`` an exact cyclic convolution::

    K x = crop( irfft2( rfft2(c) * rfft2(pad(x)) ) ),   c = roll(pad(table))

in ``O(MN log MN)`` time and ``O(MN)`` memory instead of ``O((HW)^2)``.  The table is split
into a compact part and a periodic far field (:mod:`gpdip.gp.support`), so the padded grid
is ``S + R`` rather than ``2S - 1``.  :class:`GridCovariance` is ``K``;
:class:`MaskedGridCovariance` is the observed block ``K_oo + s^2 I`` as a view (scatter,
multiply, gather), never materialised.  The ``linear_operator`` subclasses in
:mod:`gpdip.gp.toeplitz` add the GPyTorch interface on top; inpainting, CG and the
preconditioners only need these (importing ``linear_operator`` costs ~0.2 s of start-up).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gpdip.errors import GpdipError
from gpdip.gp.grid import Size, table_grid_size
from gpdip.gp.support import (
    FarFieldSplit,
    compact_part,
    far_column,
    fft_shape_for,
    periodic_matmul,
    split_far_field,
)


def embed_table(table: Tensor, shape: Size) -> Tensor:
    """First column ``c`` of the circulant of period ``shape`` holding the table.

    ``c[..., dy mod M, dx mod N] = table[..., H-1+dy, W-1+dx]`` for ``|dy| < H, |dx| < W``,
    zero elsewhere (these entries never meet the grid when ``M >= 2H-1``).  The last
    ``len(shape)`` axes of ``table`` are the grid's; any leading axes are a batch.
    """
    grid_dims = len(shape)
    first: tuple[int, ...] = (0,) * (table.dim() - grid_dims)
    size = table_grid_size(table[first])
    c = table.new_zeros(*table.shape[: table.dim() - grid_dims], *shape)
    corner: tuple = (..., *[slice(0, t) for t in table.shape[-grid_dims:]])
    c[corner] = table
    return torch.roll(c, shifts=tuple(-(s - 1) for s in size), dims=tuple(range(-grid_dims, 0)))


def circulant_spectrum(c: Tensor, grid_dims: int | None = None) -> Tensor:
    """Eigenvalues of the circulant with first column ``c`` (the last ``grid_dims`` axes).

    Real part of the real FFT: the spectrum of the circulant of the symmetric part
    ``(c[k] + c[-k]) / 2``, i.e. exactly ``c``'s when the kernel is symmetric.
    """
    grid_dims = c.dim() if grid_dims is None else grid_dims
    return torch.fft.rfftn(c, dim=tuple(range(-grid_dims, 0))).real


def toeplitz_matmul(spectrum: Tensor, x: Tensor, size: Size, shape: Size) -> Tensor:
    """``K x`` for grids ``x`` of shape ``(..., *size)`` through the circulant spectrum."""
    dims = tuple(range(-len(size), 0))
    xf = torch.fft.rfftn(x, s=shape, dim=dims)
    # in place when no gradient needs xf and the product keeps xf's shape (a CG iteration
    # spends as long on elementwise passes over the padded grid as on the FFTs themselves)
    if not (spectrum.requires_grad or x.requires_grad) and _broadcasts_into(spectrum, xf):
        xf.mul_(spectrum)
    else:
        xf = xf * spectrum
    y = torch.fft.irfftn(xf, s=shape, dim=dims)
    return y[(..., *[slice(0, s) for s in size])]


def _broadcasts_into(small: Tensor, big: Tensor) -> bool:
    """Whether ``small`` broadcasts to ``big``'s shape exactly (so ``big *= small`` works)."""
    if small.dim() > big.dim():
        return False
    return all(a in (1, b) for a, b in zip(small.shape[::-1], big.shape[::-1], strict=False))


class GridCovariance:
    """The ``(HW, HW)`` covariance of a whole grid from its kernel table, as FFT matmuls.

    ``K[i, j] = T[c + p_i - p_j]`` with ``p_i`` the row-major pixel coordinates and ``c``
    the table centre (the table's symmetric part: a kernel table is symmetric).

    Args:
        table: ``(*batch, 2H-1, 2W-1)`` (or ``(*batch, 2N-1)``) kernel table; may
            require grad (then the full ``2S - 1`` embedding is kept, so that every
            entry gets its gradient).
        dtype: working precision of the FFTs (default: the table's).
        grid_dims: number of trailing table axes that are grid axes (1 or 2); default
            ``table.dim()``, i.e. no batch.
    """

    def __init__(
        self, table: Tensor, dtype: torch.dtype | None = None, grid_dims: int | None = None
    ):
        grid_dims = table.dim() if grid_dims is None else grid_dims
        if grid_dims not in (1, 2) or table.dim() < grid_dims:
            raise GpdipError(
                f"GridKernelOperator: grid_dims must be 1 or 2 and at most table.dim() = "
                f"{table.dim()}, got {grid_dims}"
            )
        self.table = table
        self.grid_dims = grid_dims
        self.table_batch_shape = table.shape[: table.dim() - grid_dims]
        first: tuple[int, ...] = (0,) * len(self.table_batch_shape)
        self.grid_size: Size = table_grid_size(table[first])
        # a periodic far field plus a compact part: the circulant only needs period S + R.
        # Not for tables that require grad: a gradient must reach every entry (an entry's
        # perturbation breaks the periodicity), so they keep the full 2S - 1 embedding.
        self.split = (
            FarFieldSplit.none(self.grid_size)
            if table.requires_grad
            else split_far_field(table, grid_dims)
        )
        self.shape_fft: Size = fft_shape_for(self.grid_size, self.split)
        compact = table
        self.far_column: Tensor | None = None
        if self.split.period is not None:
            compact = compact_part(table, self.grid_size, self.split)
            self.far_column = far_column(table, self.grid_size, self.split.period[0])
        spectrum = circulant_spectrum(embed_table(compact, self.shape_fft), grid_dims)
        # dtype=float32 halves FFT cost for loose tolerances; the spectrum is built in float64
        self.spectrum = spectrum.to(dtype) if dtype is not None else spectrum

    @property
    def n(self) -> int:
        return math.prod(self.grid_size)

    def astype(self, dtype: torch.dtype) -> GridCovariance:
        """The same covariance with FFTs in ``dtype`` (a shallow copy; the spectrum is
        rounded once from float64)."""
        copy = object.__new__(GridCovariance)
        copy.__dict__.update(self.__dict__)
        copy.spectrum = self.spectrum.to(dtype)
        return copy

    def max_eigenvalue_bound(self) -> float:
        """An upper bound of ``lambda_max(K)`` over the batch.

        Weyl: ``K = B + F``.  ``B``'s Toeplitz matrix is a principal submatrix of its
        circulant (period ``>= S + R``), so ``lambda_max(B) <= max(spectrum)``.  The
        periodic part is ``F = S C S^T`` with ``C`` the ``P^d`` circulant of the far column
        and ``S`` the residue-class indicator, so ``lambda_max(F) <= max(lambda_max(C), 0)``
        times the largest class, ``prod(ceil(S / P))``.
        """
        bound = float(self.spectrum.max())
        if self.far_column is not None and self.split.period is not None:
            period = self.split.period[0]
            far = circulant_spectrum(self.far_column.detach(), self.grid_dims)
            count = math.prod(-(-s // period) for s in self.grid_size)
            bound += max(float(far.max()), 0.0) * count
        return bound

    def grid_matmul(self, x: Tensor) -> Tensor:
        """``K x`` with ``x`` of shape ``(..., H, W)`` (broadcast against the batch)."""
        return self._grid_matmul(self.spectrum, self.far_column, x)

    def _grid_matmul(self, spectrum: Tensor, column: Tensor | None, x: Tensor) -> Tensor:
        y = toeplitz_matmul(spectrum, x, self.grid_size, self.shape_fft)
        if column is not None:
            y = periodic_matmul(column, x, self.grid_size, add_to=y)
        return y


class MaskedGridCovariance:
    """``K_oo + s^2 I``: the observed-pixel block of a grid covariance plus noise.

    Args:
        base: the full-grid :class:`GridCovariance` (possibly batched).
        mask: bool tensor of shape ``size``; True = observed.  One mask for the batch.
        noise: noise variance ``s^2``: a scalar tensor, or one per batch member.
    """

    def __init__(self, base: GridCovariance, mask: Tensor, noise: Tensor):
        self.base = base
        self.mask = mask.bool().reshape(-1)
        self.index = torch.nonzero(self.mask).reshape(-1)
        self.noise = torch.as_tensor(noise)
        self._fmask: dict[torch.dtype, Tensor] = {}  # float copies of the mask, per dtype

    def astype(self, dtype: torch.dtype) -> MaskedGridCovariance:
        """The same operator with FFTs in ``dtype`` (mask, index and noise shared)."""
        copy = object.__new__(MaskedGridCovariance)
        copy.__dict__.update(self.__dict__)
        copy.base = self.base.astype(dtype)
        return copy

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
        return self.gather(self.base.grid_matmul(self.scatter(v))) + self._noise_for(v) * v

    def matvec_full(self, v: Tensor) -> Tensor:
        """The same operator on full-grid vectors ``(..., H*W)`` that vanish off the mask.

        ``M * (K v) + s^2 v``: no index scatter/gather, so CG can run on the grid directly
        (inner products are unchanged because every iterate vanishes off the mask).
        """
        g = v.reshape(*v.shape[:-1], *self.base.grid_size)
        kv = self.base.grid_matmul(g).reshape(v.shape)  # a fresh tensor (a cropped FFT)
        if kv.requires_grad or v.requires_grad:
            return self.float_mask(v.dtype) * kv + self._noise_for(v) * v
        kv.mul_(self.float_mask(v.dtype))
        noise = self._noise_for(v)
        return kv.add_(v, alpha=noise) if isinstance(noise, float) else kv.addcmul_(noise, v)

    def float_mask(self, dtype: torch.dtype) -> Tensor:
        """The mask as ``(H*W,)`` zeros and ones of ``dtype`` (cached)."""
        if dtype not in self._fmask:
            self._fmask[dtype] = self.mask.to(dtype)
        return self._fmask[dtype]

    def _noise_for(self, v: Tensor) -> Tensor | float:
        """The noise to multiply vectors ``v (..., n)`` by: a Python float when scalar, so
        that float32 vectors stay float32 (a 1-element float64 tensor would promote them)."""
        return float(self.noise) if self.noise.dim() == 0 else self.noise[..., None].to(v.dtype)

    @property
    def mask_grid(self) -> Tensor:
        """The mask with the grid's shape."""
        return self.mask.reshape(self.base.grid_size)


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
