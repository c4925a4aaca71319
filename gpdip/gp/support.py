"""A kernel table as a compact part plus a periodic far field, for smaller FFTs.

A DIP network's input is white noise, so two output pixels whose receptive fields do
not overlap have independent pre-activations.  Their covariance is then a product of
means, which depends only on the pixels' phases under the upsampling layers: beyond
the receptive-field radius ``R`` the table is *periodic* in the offset, with the
upsampling period ``P`` (``P = 1``, a constant, for stationary nets).  So

    T[d] = c[d mod P] + B[d],     B[d] = 0 for |d|_axis > R_axis on some axis,

and ``K x = (periodic part) x + (compact part) x``.  The periodic part is a P x P
circular convolution of ``x`` folded modulo ``P``; the compact part needs a circulant of
period ``M >= S + R`` instead of ``2S - 1`` (no wrap-around reaches the grid: an offset
``d`` in ``[-(S-1), S-1]`` lands at ``d mod M``, which meets ``B``'s support only for
``|d| <= R``).  For ``unet2`` at 512² that is a 525² FFT instead of 1024²; for
``skip5-bilinear`` (P = 32, R = 93) 625² instead of 1024².

:func:`split_far_field` finds ``P`` and ``R`` from the table itself (entries equal to the
periodic continuation within ``rtol`` of the table's largest entry), so it needs no
knowledge of the architecture and falls back to ``P = None`` (no split) when nothing is
gained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gpdip.gp.grid import Size, next_fast_len

#: Periods tried (the upsampling periods of the catalog: 2^levels).
PERIODS = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class FarFieldSplit:
    """``period`` and ``radius`` per grid axis (``period`` None: no split)."""

    period: Size | None
    radius: Size

    @classmethod
    def none(cls, size: Size) -> FarFieldSplit:
        """No split: the whole table is the compact part (radius ``S - 1``)."""
        return cls(None, tuple(s - 1 for s in size))


def split_far_field(table: Tensor, grid_dims: int, rtol: float = 1e-13) -> FarFieldSplit:
    """The period and compact radius that minimise the FFT size of ``table``.

    ``table``: ``(*batch, 2H-1[, 2W-1])``, detached.  An entry counts as far field when
    it equals the periodic continuation of the outermost ``P`` offsets within
    ``rtol * max|table|`` for every batch member.
    """
    size: Size = tuple((s + 1) // 2 for s in table.shape[-grid_dims:])
    flat = table.reshape(-1, *table.shape[-grid_dims:])
    tol = rtol * float(flat.abs().max())
    none = FarFieldSplit.none(size)
    periods = [p for p in PERIODS if all(p < s for s in size)]
    # rank the periods on the table's central lines (cheap), then check the whole table
    # for the most promising one: a full check per period cost ~0.1 s at 512²
    ranked = sorted(periods, key=lambda p: _line_cost(flat, size, p, tol))
    full_cost = math.prod(2 * s - 1 for s in size)
    for candidates in (ranked[:1], ranked[1:]):
        best, best_cost = none, full_cost
        for period in candidates:
            split = _full_split(flat, size, period, tol)
            cost = math.prod(s + r for s, r in zip(size, split.radius, strict=True))
            if cost < best_cost:
                best, best_cost = split, cost
        if best.period is not None:
            return best
    return none


def _full_split(flat: Tensor, size: Size, period: int, tol: float) -> FarFieldSplit:
    residual = (flat - _tile(_far_block(flat, size, period), size, period)).abs() > tol
    return FarFieldSplit((period,) * len(size), _radius(residual.any(0), size))


def _line_cost(flat: Tensor, size: Size, period: int, tol: float) -> int:
    """The FFT cost predicted from the lines of the table through the centre, one per axis."""
    cost = 1
    for axis, side in enumerate(size):
        centre: list = [0] + [s - 1 for s in size]
        centre[axis + 1] = slice(None)
        line = flat[tuple(centre)]
        tiled = _tile(line[-period:], (side,), period)
        bad = torch.nonzero((line - tiled).abs() > tol)
        cost *= side + (int((bad - (side - 1)).abs().max()) if bad.numel() else 0)
    return cost


def fft_shape_for(size: Size, split: FarFieldSplit) -> Size:
    """Circulant period of the compact part: ``>= S + R`` (``>= 2S - 1`` without a split)."""
    return tuple(
        next_fast_len(s + r if split.period else 2 * s - 1)
        for s, r in zip(size, split.radius, strict=True)
    )


def far_column(table: Tensor, size: Size, period: int) -> Tensor:
    """``c[..., q]``: the far-field value at offsets ``d = q (mod P)`` on every grid axis.

    Differentiable in ``table`` (the outermost block, rolled so index ``q`` is ``d mod P``).
    """
    block = _far_block(table, size, period)
    dims = tuple(range(-len(size), 0))
    return torch.roll(block, shifts=tuple(s % period for s in size), dims=dims)


def compact_part(table: Tensor, size: Size, split: FarFieldSplit) -> Tensor:
    """``B = T - tile(c)`` on the offsets ``|d| <= R``: shape ``(*batch, 2R+1, ...)``."""
    assert split.period is not None
    period = split.period[0]
    box: tuple = (..., *[slice(s - 1 - r, s + r) for s, r in zip(size, split.radius, strict=True)])
    far = _tile(_far_block(table, size, period), size, period)
    return (table - far)[box]


def periodic_matmul(column: Tensor, x: Tensor, size: Size, add_to: Tensor | None = None) -> Tensor:
    """``y_i = sum_j c[(i - j) mod P] x_j`` for grids ``x (..., *size)`` (plus ``add_to``).

    Folds ``x`` modulo ``P`` (sums over the residue classes), convolves circularly with
    ``c`` on the ``P^d`` torus, and tiles back: O(n + P^d log P) instead of an FFT of ``n``.
    With ``add_to`` (a ``(..., *size)`` grid, perhaps a strided view) the result is
    ``add_to + y`` in one pass when ``P`` divides every side (no tiled copy).
    """
    period = column.shape[-1]
    nd = len(size)
    dims = tuple(range(-nd, 0))
    pad = [p for s in reversed(size) for p in (0, -s % period)]
    folded = torch.nn.functional.pad(x, pad) if any(pad) else x
    blocks = [(-(-s // period), period) for s in size]
    folded = folded.reshape(*x.shape[:-nd], *[n for b in blocks for n in b])
    folded = folded.sum(dim=tuple(-2 * nd + 2 * a for a in range(nd)))  # (..., P, P)
    shape = (period,) * nd
    conv = torch.fft.irfftn(
        torch.fft.rfftn(folded, dim=dims) * torch.fft.rfftn(column.to(x.dtype), dim=dims),
        s=shape,
        dim=dims,
    )
    if add_to is not None and not any(pad):
        split = add_to
        for axis in range(nd):  # (..., S/P, P, S/P, P): a view, even of a strided crop
            split = split.unflatten(split.dim() - nd + 2 * axis - axis, blocks[axis])
        lead = conv.dim() - nd
        spread = conv.reshape(*conv.shape[:lead], *[v for _ in range(nd) for v in (1, period)])
        out = split + spread
        return out.reshape(*out.shape[: out.dim() - 2 * nd], *size)
    reps = [b[0] for b in blocks]
    tiled = conv.repeat(*([1] * (conv.dim() - nd)), *reps)
    crop: tuple = (..., *[slice(0, s) for s in size])
    return tiled[crop] if add_to is None else add_to + tiled[crop]


def _far_block(table: Tensor, size: Size, period: int) -> Tensor:
    """The ``P^d`` entries at the most positive offsets (all in the far field)."""
    block: tuple = (..., *[slice(2 * s - 1 - period, 2 * s - 1) for s in size])
    return table[block]


def _tile(block: Tensor, size: Size, period: int) -> Tensor:
    """The periodic continuation of the outermost block over the whole table."""
    nd = len(size)
    # block[k] sits at table index 2S-1-P+k, so index t reads block[(t - (2S-1-P)) mod P]
    start = [-(2 * s - 1 - period) % period for s in size]
    reps = [-(-(2 * s - 1 + st) // period) for s, st in zip(size, start, strict=True)]
    tiled = block.repeat(*([1] * (block.dim() - nd)), *reps)
    crop: tuple = (..., *[slice(st, st + 2 * s - 1) for s, st in zip(size, start, strict=True)])
    return tiled[crop]


def _radius(residual: Tensor, size: Size) -> Size:
    """Largest ``|d|`` per axis among the True entries of ``residual (*table)``."""
    hits = torch.nonzero(residual)
    if hits.numel() == 0:
        return (0,) * len(size)
    centre = torch.tensor([s - 1 for s in size])
    return tuple(int(v) for v in (hits - centre).abs().max(0).values)
