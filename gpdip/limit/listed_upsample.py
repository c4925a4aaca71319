"""The final upsampling's values on a list of fine offsets (:mod:`gpdip.limit.phase_tables`).

Two sparse products do the work: the first upsamples dimension 0 for the distinct r₀ of the
list, the second gathers, for each listed pair, its own r₀ column and its r₁ terms.  Both
term matrices depend on the layout only and are kept across compiles
(:mod:`gpdip.limit.index_cache`).  The tables in between are laid out for the products that
read them: the coarse box is gathered straight into (P₀, 2R₀+1, P₁, r₁ window) and the first
product's result is read in its own (rows, P₁, r₁ window) order, so no table-sized transpose
(a copy, and fresh memory to fault in) is needed.  The sums and their order per entry are
those of the dense maps in :mod:`gpdip.limit.resample_maps`.
"""

from __future__ import annotations

import torch

from gpdip.limit import covtable as ct
from gpdip.limit import index_cache as ic
from gpdip.limit import resample_maps as rm

Plan = tuple[int, int, torch.Tensor, tuple[int, ...], torch.Tensor]


def upsample_points(
    table: ct.CovTable,
    factor: int,
    sources: ct.Sources,
    listed: torch.Tensor,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Upsampled C[p, r] at the listed offsets: values of shape (*τ·period, n).

    ``rows`` (H, n): only these fine dimension-0 phases per offset (a swap-halved
    table, :mod:`gpdip.limit.swap_fold`): values of shape (H, τP₁, n).

    ``table`` may be on a folded offset list: only the part of its box that is read is
    unfolded.
    """
    device = table.values.device
    if table.dims == 1:
        table = ct.to_box(table)
        terms = rm.upsample_terms(
            table.period[0],
            table.radius[0],
            factor,
            sources,
            listed[:, 0].reshape(1, -1).to(device),
        )
        return rm._regather(table, 0, factor * table.period[0], 0, terms).values
    assert table.dims == 2
    low, high, first_matrix, first_shape, last_matrix = _plan(table, factor, sources, listed, rows)
    # (τP₀ or H)·n₀ rows of P₁·(high − low + 1): dimension 0 upsampled, r₁ window untouched.
    inter = first_matrix @ _coarse_rows(table, low, high)
    out = rm.columns_by(last_matrix, inter.reshape(first_shape[0], -1))
    # contiguous: under autograd the product comes back transposed (a no-op otherwise)
    return out.reshape(first_shape[0], factor * table.period[1], -1).contiguous()


def _plan(
    table: ct.CovTable,
    factor: int,
    sources: ct.Sources,
    listed: torch.Tensor,
    rows: torch.Tensor | None,
) -> Plan:
    """:func:`_build_plan`, kept by layout (the NNGP and NTK tables and later compiles)."""
    device = table.values.device
    key = (
        "listed-upsample",
        table.period,
        ct.box_radius(table),
        factor,
        tuple(tuple(sources(f)) for f in range(factor)),
        listed.cpu().numpy().tobytes(),
        None if rows is None else rows.cpu().numpy().tobytes(),
        str(device),
        table.values.dtype,
    )
    return ic.CACHE.get_or_build(key, lambda: _build_plan(table, factor, sources, listed, rows))


def _coarse_rows(table: ct.CovTable, low: int, high: int) -> torch.Tensor:
    """The coarse box at r₁ indices low … high as rows (P₀·(2R₀+1), P₁·(high − low + 1)).

    A table on an offset list is gathered straight into that layout (one gather); a box
    table is copied into it.
    """
    period, radius = table.period, ct.box_radius(table)
    shape = (period[0], period[1], 2 * radius[0] + 1, high - low + 1)
    n_rows = period[0] * shape[2]
    points = table.points
    if points is None:
        box = table.values.narrow(-1, low, high - low + 1)
        return box.movedim(2, 1).reshape(n_rows, -1)
    key = ("box-rows", *ic.layout_key(points), period, str(table.values.device), low, high)

    def build() -> torch.Tensor:
        index = ct.box_index(points, period, table.values.device, (low, high))
        # int32: half the index bytes to stream (the coarse table is far below 2**31 entries)
        return index.expand(shape).movedim(2, 1).reshape(-1).to(torch.int32)

    index = ic.CACHE.get_or_build(key, build)
    # index_select, not take: the same entries, about 1.5 times as fast on CPU
    return table.values.reshape(-1).index_select(0, index).view(n_rows, -1)


def _build_plan(
    table: ct.CovTable,
    factor: int,
    sources: ct.Sources,
    listed: torch.Tensor,
    rows: torch.Tensor | None,
) -> Plan:
    """(low, high, first matrix, its terms' shape, last matrix) of :func:`upsample_points`.

    Dimension 0 is upsampled for the distinct r₀ (a product pass, the first matrix); the
    last matrix then gathers, for each listed pair, its own r₀ column and r₁ terms.
    """
    device = table.values.device
    radius = ct.box_radius(table)
    last = rm.upsample_terms(
        table.period[1], radius[1], factor, sources, listed[:, 1].reshape(1, -1).to(device)
    )
    # Only the coarse offsets of dimension 1 that the listed pairs read (about half the box
    # under the quadrant and octant folds, where r₁ ≥ 0) are unfolded and go through the
    # product pass.
    low = min(int(off.min()) for _, off, _ in last)
    high = max(int(off.max()) for _, off, _ in last)
    first, column = torch.unique(listed[:, 0], return_inverse=True)
    first_rows = None
    if rows is not None:  # the rows depend on r₀ only: those of each distinct r₀
        first_rows = rows[:, _first_occurrence(column, len(first)).to(device)]
    terms = rm.upsample_terms(
        table.period[0], radius[0], factor, sources, first.reshape(1, -1).to(device), first_rows
    )
    n_box0 = 2 * radius[0] + 1
    first_matrix = rm.term_matrix(terms, n_box0, table.period[0] * n_box0, table.values)
    first_shape = tuple(terms[0][0].shape)
    # inter: (τP₀ or H, n₀, P₁, high − low + 1); read (column, phase₁, offset₁) per listed
    # pair, for every row at once: one sparse product does every term.
    n_first, n_off = len(first), high - low + 1
    column = column.to(device)
    terms = [((column * table.period[1] + phase), off - low, weight) for phase, off, weight in last]
    n_in = table.period[1] * n_first * n_off
    last_matrix = rm.term_matrix(terms, n_off, n_in, table.values)
    return low, high, first_matrix, first_shape, last_matrix


def _first_occurrence(column: torch.Tensor, count: int) -> torch.Tensor:
    """For each of ``count`` distinct values, an index where ``column`` takes it."""
    where = torch.empty(count, dtype=torch.long)
    where[column.flip(0)] = torch.arange(len(column) - 1, -1, -1)
    return where
