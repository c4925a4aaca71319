"""Kernel tables on a regular grid: shapes, cropping, dense matrices.

A *kernel table* of a stationary kernel on an ``H x W`` grid is the tensor
``K`` of shape ``(2H-1, 2W-1)`` with ``K[H-1+dy, W-1+dx] = k((dy, dx))``, the
covariance of two pixels at offset ``(dy, dx)``; in 1-D it has shape ``(2N-1,)``.
This is the format of :func:`gpdip.compile_kernel`, and the only thing the
grid engine needs to know about a kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from gpdip.errors import GpdipError

Size = tuple[int, ...]
#: A callable returning the kernel table for a grid size (``size -> (2H-1, 2W-1)``).
TableFn = Callable[[Size], Tensor]


def as_size(size: int | Sequence[int], dims: int = 2) -> Size:
    """Normalise ``size`` (an int ``S`` meaning ``(S,)*dims``, or a tuple) to a tuple."""
    if isinstance(size, int):
        out: Size = (size,) * dims
    else:
        out = tuple(int(s) for s in size)
    if len(out) not in (1, 2) or any(s < 1 for s in out):
        raise GpdipError(f"size: expected 1 or 2 positive integers, got {size!r}")
    return out


def next_fast_len(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are 2, 3 and 5 (fast for pocketfft).

    The same numbers as ``scipy.fft.next_fast_len(n, real=True)``, without importing
    scipy.fft (a third of a second of start-up).
    """
    best = 1 << max(n - 1, 0).bit_length()  # the next power of two always qualifies
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            # the smallest power-of-two multiple of p35 that reaches n
            m = p35 << max(0, (-(-n // p35) - 1).bit_length())
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def table_grid_size(table: Tensor) -> Size:
    """Grid size ``(H, W)`` that a table of shape ``(2H-1, 2W-1)`` covers."""
    if table.dim() not in (1, 2) or any(s % 2 == 0 for s in table.shape):
        raise GpdipError(
            f"kernel table: expected shape (2H-1, 2W-1) or (2N-1,) with odd sides, "
            f"got {tuple(table.shape)}"
        )
    return tuple((s + 1) // 2 for s in table.shape)


def crop_table(table: Tensor, size: Size) -> Tensor:
    """Centre crop of a (bigger) table to the table of an ``size`` grid."""
    have = table_grid_size(table)
    if len(have) != len(size) or any(h < s for h, s in zip(have, size, strict=True)):
        raise GpdipError(
            f"kernel table covers a {have} grid, but a {tuple(size)} grid was requested"
        )
    sl = tuple(slice(h - s, h + s - 1) for h, s in zip(have, size, strict=True))
    return table[sl]


def offsets(size: Size, dtype: torch.dtype = torch.float64, device=None) -> list[Tensor]:
    """Offset coordinates of a table: one broadcastable tensor per axis, ``-(S-1)..S-1``."""
    axes = [torch.arange(-(s - 1), s, dtype=dtype, device=device) for s in size]
    return list(torch.meshgrid(*axes, indexing="ij"))


def table_from_offsets(fn: Callable[[Tensor], Tensor], size: Size, **kw) -> Tensor:
    """Table of an isotropic kernel ``fn(r)`` (``r`` = Euclidean offset length)."""
    offs = offsets(size, **kw)
    r = torch.sqrt(torch.stack([o * o for o in offs]).sum(0))
    return fn(r)


def grid_coordinates(size: Size, dtype=torch.float64, device=None) -> Tensor:
    """Pixel coordinates of a grid, row-major: shape ``(prod(size), len(size))``."""
    axes = [torch.arange(s, dtype=dtype, device=device) for s in size]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def dense_from_table(table: Tensor, size: Size | None = None) -> Tensor:
    """Dense ``(n, n)`` covariance of the whole grid (row-major pixels) from a table.

    ``K_dense[i, j] = table[centre + p_i - p_j]``; the reference for small grids.
    """
    size = size or table_grid_size(table)
    table = crop_table(table, size)
    coords = grid_coordinates(size, dtype=torch.long, device=table.device)
    diff = (
        coords[:, None, :]
        - coords[None, :, :]
        + torch.tensor([s - 1 for s in size], device=table.device)
    )
    return table[tuple(diff[..., d] for d in range(len(size)))]
