"""Pointwise maps on phase tables, chunked over the first phase axis.

The maps that read one entry C[p, r] and the variances C[p, 0] and C[p + r, 0]
(non-linearities, channel normalisation) dominate the compile time of the
finest tables (1,024 phases × thousands of offsets for period-32 networks).
Run on the whole table, each of their dozen operations allocates a fresh
table-sized temporary; above glibc's mmap threshold (32 MiB at most) every such
allocation is new memory, and its page faults cost about ten times the
arithmetic.  Chunks of about :data:`CHUNK_ENTRIES` entries keep the temporaries
in the cache and on the heap; the operations and their order per entry are
those of the unchunked maps, so the results are bit-for-bit the same.

:func:`phase_chunks` yields, per chunk of the first phase axis, the slice and
the pair of variances (k11 = C[p, 0] broadcastable to the chunk, k22 =
C[p + r, 0] as a new tensor the caller may overwrite).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from gpdip.limit import covtable as ct
from gpdip.limit import index_cache as ic
from gpdip.limit import swap_fold as sf
from gpdip.limit.covtable import CovTable

# 2**16 float64 entries: 512 KiB per temporary, a few of them fit in L2.
CHUNK_ENTRIES = 2**16


def no_grad_tables(*tables: CovTable | None) -> bool:
    """Whether no table needs autograd (the chunked, in-place paths are then allowed)."""
    return not any(t is not None and t.values.requires_grad for t in tables)


def positive_products(table: CovTable) -> bool:
    """Whether every product of two variances C[p, 0]·C[q, 0] is above 0 in float64.

    Rounding is monotone, so every such product is at least the smallest variance squared:
    when that is above 0, no entry needs the zero-variance check (NaN says False).
    """
    smallest = float(table.diagonal().detach().min())
    return smallest > 0 and smallest * smallest > 0


def phase_chunks(
    table: CovTable, entries: int | None = None, shift: float | None = None
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """(rows, k11, k22) per chunk ``values[rows]`` of the first phase axis.

    k11[..] = C[p, 0] with size-1 offset axes (it broadcasts against the chunk);
    k22[..] = C[(p + r) mod P, 0] of the chunk's shape, freshly gathered.  On a
    swap-halved table (:mod:`gpdip.limit.swap_fold`) both are gathered per entry.
    ``entries``: the chunk size (default :data:`CHUNK_ENTRIES`).  ``shift``: added to the
    variances before they are gathered (C[p, 0] + shift, the same bits as adding it after).
    """
    diag = table.diagonal()
    if shift is not None:
        diag = diag + shift
    flat_diag = diag.reshape(-1)
    per_row = math.prod(table.values.shape[1:])
    step = max(1, (entries or CHUNK_ENTRIES) // max(per_row, 1))
    if ct.halved(table):
        first_index, second_index = _pair_indices(table)
        for start in range(0, table.values.shape[0], step):
            rows = slice(start, min(start + step, table.values.shape[0]))
            shape = table.values[rows].shape
            k11 = flat_diag.index_select(0, first_index[rows].reshape(-1)).view(shape)
            k22 = flat_diag.index_select(0, second_index[rows].reshape(-1)).view(shape)
            yield rows, k11, k22
        return
    offset_ones = (1,) * (table.values.dim() - table.dims)
    listed_index = _listed_index(table)
    if listed_index is None:
        first, rest = _phase_index_parts(table)
    for start in range(0, table.period[0], step):
        rows = slice(start, min(start + step, table.period[0]))
        k11 = diag[rows].reshape(diag[rows].shape + offset_ones)
        if listed_index is not None:  # the same entries, by one contiguous index_select
            shape = table.values[rows].shape
            k22 = flat_diag.index_select(0, listed_index[rows].reshape(-1)).view(shape)
        else:
            k22 = flat_diag[first[rows] + rest]
        yield rows, k11, k22


# Index arrays of listed tables up to this many entries are kept (32 MiB each).
LISTED_INDEX_ENTRIES = 2**23
# The kept gather indices point into a variance table (far below 2**31 entries): int32 halves
# the index bytes every gather streams through, the larger part of its memory traffic.
INDEX_DTYPE = torch.int32


def _listed_index(table: CovTable) -> torch.Tensor | None:
    """Flat index (*period, n) of C[(p + r) mod P, 0] for a table on an offset list, kept by
    layout across compiles; None for box tables and very large lists (built per chunk)."""
    points = table.points
    if points is None or table.values.numel() > LISTED_INDEX_ENTRIES:
        return None
    key = ("listed", *ic.layout_key(points), table.period, str(table.values.device))

    def build() -> torch.Tensor:
        first, rest = _phase_index_parts(table)
        return (first + rest).expand(table.values.shape).to(INDEX_DTYPE, copy=True).contiguous()

    return ic.CACHE.get_or_build(key, build)


def _pair_indices(table: CovTable) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (H, P₁, n) of C[p, 0] and C[p + r, 0] for a swap-halved table's entries."""
    points = table.points
    assert points is not None and points.rows is not None
    rows, offsets = points.rows, points.offsets
    key = ("pairs", *ic.layout_key(points), table.period, str(table.values.device))

    def build() -> tuple[torch.Tensor, torch.Tensor]:
        first, second = sf.pair_indices(rows, offsets, table.period)
        first, second = first.expand(table.values.shape).to(INDEX_DTYPE), second.to(INDEX_DTYPE)
        return first.contiguous(), second.contiguous()

    return ic.CACHE.get_or_build(key, build)


def _phase_index_parts(table: CovTable) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat index of C[(p + r) mod P, 0] split as first[p₀, ...] + rest[...] (broadcast).

    ``first`` holds dimension 0's part with the first phase axis in front;
    ``rest`` the other dimensions' part, broadcast over the chunk's axes after it.
    """
    device = table.values.device
    period = table.period
    strides = [math.prod(period[d + 1 :]) for d in range(table.dims)]
    if table.points is not None:  # values (*period, n)
        offsets = table.points.offsets.to(device)
        parts = []
        for d, p_d in enumerate(period):
            shape = [1] * (table.dims + 1)
            shape[d] = p_d
            phase = torch.arange(p_d, device=device).reshape(shape)
            parts.append(((phase + offsets[:, d]) % p_d) * strides[d])
    else:  # values (*period, *(2R+1))
        parts = []
        for d, p_d in enumerate(period):
            shape = [1] * (2 * table.dims)
            shape[d], shape[table.dims + d] = p_d, 2 * table.radius[d] + 1
            phase = torch.arange(p_d, device=device).reshape(-1, 1)
            r = torch.arange(-table.radius[d], table.radius[d] + 1, device=device)
            parts.append((((phase + r) % p_d) * strides[d]).reshape(shape))
    rest = sum(parts[1:], torch.zeros((), dtype=torch.long, device=device))
    return parts[0], rest
