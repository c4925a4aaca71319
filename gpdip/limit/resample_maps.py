"""The resampling maps on phase tables: decimation, average pooling, upsampling (nearest,
bilinear, sinc), each re-indexing one dimension's (phase, offset) axes at a time.

Split from :mod:`gpdip.limit.covtable`, which holds the table types and the maps that keep
offsets (conv taps, affine mixes, diagonals).
"""

from __future__ import annotations

import math
import warnings

import torch

from gpdip.limit.covtable import CovTable, Sources, _grid, stationary, to_box


def _regather(
    table: CovTable,
    d: int,
    new_period: int,
    new_radius: int,
    terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> CovTable:
    """Re-index dimension d: out[p, r] = Σ_terms w[p, r] · C[phase[p, r], off[p, r]].

    ``terms`` holds (phase index, offset index, weight) arrays of shape
    (new_period, 2*new_radius+1); other dimensions are untouched.
    """
    n_off = table.values.shape[table.offset_axis(d)]
    matrix = term_matrix(terms, n_off, table.values.shape[d] * n_off, table.values)
    return regather_by(table, d, new_period, new_radius, matrix, tuple(terms[0][0].shape))


def regather_by(
    table: CovTable,
    d: int,
    new_period: int,
    new_radius: int,
    matrix: torch.Tensor,
    shape: tuple[int, ...],
) -> CovTable:
    """:func:`_regather` with its term matrix built (:func:`term_matrix`; ``shape``: the
    terms' shape), e.g. kept from an earlier compile of the same layout."""
    vals = table.values.movedim((d, table.offset_axis(d)), (0, 1))
    n_phase, n_off = vals.shape[:2]
    # One (phase, offset) axis in front, the other dimensions as contiguous rows:
    # each term is then a row gather (index_select), far faster than a strided one.
    rows = vals.reshape(n_phase * n_off, -1)
    out = matrix @ rows
    out = out.reshape(shape + vals.shape[2:])
    out = out.movedim((0, 1), (d, table.offset_axis(d))).contiguous()
    period = list(table.period)
    radius = list(table.radius)
    period[d], radius[d] = new_period, new_radius
    return CovTable(out, tuple(period), tuple(radius))


def sparse_rows(
    terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], n_off: int, rows: torch.Tensor
) -> torch.Tensor:
    """out[i] = Σ_terms w[i]·rows[phase[i]·n_off + off[i]] as one sparse × dense product.

    The terms' arrays (any common shape, flattened to i) hold few entries per
    output row; a CSR matrix with one row per output (its entries in term order;
    repeated columns simply add) reads each input row once per use instead of one
    full gather, multiply and add per term, and differentiates in ``rows``.
    """
    return term_matrix(terms, n_off, rows.shape[0], rows) @ rows


def sparse_columns(
    terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], n_off: int, cols: torch.Tensor
) -> torch.Tensor:
    """out[:, i] = Σ_terms w[i]·cols[:, phase[i]·n_off + off[i]]: :func:`sparse_rows` transposed.

    Without autograd it is one dense × (CSR)ᵀ product, which reads ``cols`` in its own
    layout and writes the result in the layout the caller keeps: the two table-sized
    transposes of ``sparse_rows(terms, n_off, cols.T).T`` are saved (same sums, same order).
    """
    return columns_by(term_matrix(terms, n_off, cols.shape[1], cols), cols)


def columns_by(matrix: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """:func:`sparse_columns` with its term matrix built (:func:`term_matrix`)."""
    if cols.requires_grad:
        return (matrix @ cols.T.contiguous()).T
    return cols @ matrix.t()


def term_matrix(
    terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    n_off: int,
    n_in: int,
    like: torch.Tensor,
) -> torch.Tensor:
    """The CSR matrix (one row per output, its terms in order) of :func:`sparse_rows`, for
    ``n_in`` input rows, with the dtype and device of ``like``."""
    n_out = terms[0][0].numel()
    device = like.device
    columns = torch.stack([(phase * n_off + off).reshape(-1) for phase, off, _ in terms], dim=1)
    weight = torch.stack([w.reshape(-1) for _, _, w in terms], dim=1).to(like)
    starts = torch.arange(0, len(terms) * n_out + 1, len(terms), device=device)
    with warnings.catch_warnings():  # "CSR support is in beta": the product used here is not
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            starts,
            columns.reshape(-1).to(device),
            weight.reshape(-1),
            (n_out, n_in),
            check_invariants=False,
        )


def decimate(table: CovTable, factor: int) -> CovTable:
    """Keep every ``factor``-th sample, y(s) = x(τs): C_y[q, r] = C_x[τq mod P, τr]."""
    table = to_box(table)
    for d in range(table.dims):
        period, radius = table.period[d], table.radius[d]
        new_period = period // math.gcd(period, factor)
        new_radius = radius // factor
        q, r = _grid(new_period, new_radius, table.values.device)
        phase = (factor * q) % period + 0 * r
        off = factor * r + radius + 0 * q
        table = _regather(
            table,
            d,
            new_period,
            new_radius,
            [(phase, off, torch.ones(phase.shape, dtype=torch.float64))],
        )
    return table


def box_average(table: CovTable, width: int) -> CovTable:
    """Average pooling before decimation: y(t) = mean_{i<τ} x(t + i).

    C_y[p, r] = mean_{i,i'} C_x[p + i, r + i' − i] (the box autocorrelation).
    """
    table = to_box(table)
    for d in range(table.dims):
        period, radius = table.period[d], table.radius[d]
        new_radius = radius - (width - 1)
        p, r = _grid(period, new_radius, table.values.device)
        terms = []
        for i in range(width):
            for i2 in range(width):
                phase = (p + i) % period + 0 * r
                off = r + i2 - i + radius + 0 * p
                terms.append(
                    (phase, off, torch.full(phase.shape, 1 / width**2, dtype=torch.float64))
                )
        table = _regather(table, d, period, new_radius, terms)
    return table


def nearest_sources(factor: int) -> Sources:
    """Nearest upsampling: fine sample τs + f copies coarse sample s."""
    return lambda f: [(0, 1.0)]


def bilinear_sources(factor: int) -> Sources:
    """Linear interpolation with align_corners=False (PyTorch's ``bilinear``).

    Fine sample t = τs + f sits at coarse coordinate u = (t + ½)/τ − ½, so it
    mixes coarse samples s + δ and s + δ + 1 with δ = ⌊(f + ½)/τ − ½⌋.
    """

    def sources(f: int) -> list[tuple[int, float]]:
        u = (f + 0.5) / factor - 0.5
        delta = math.floor(u)
        frac = u - delta
        return [(delta, 1.0 - frac), (delta + 1, frac)]

    return sources


def upsample(
    table: CovTable, factor: int, sources: Sources, offsets: list[torch.Tensor] | None = None
) -> CovTable:
    """Upsampling by a phase-dependent linear map: y(τs + f) = Σ_k a_{f,k} x(s + δ_k).

    C_y[t, t + r] = Σ_{k,k'} a_{f,k} a_{f',k'} C_x[(s + δ_k) mod P, s' + δ_k' − s − δ_k]
    with s = ⌊t/τ⌋, f = t mod τ and likewise s', f' for t + r.  The output period
    is τ·P: the phase is carried exactly, not approximated by a stationary kernel.

    ``offsets``: per dimension, the fine offsets to compute (a product grid;
    default every offset the input's radius allows).  The result's ``values``
    then have shape ``(*period, *(len(o) for o in offsets))`` and its ``radius``
    field is meaningless (the caller wraps it, see :mod:`gpdip.limit.phase_tables`).
    """
    table = to_box(table)
    for d in range(table.dims):
        period, radius = table.period[d], table.radius[d]
        new_radius = factor * (radius - 2 * _span(factor, sources))
        _, r = _grid(1, new_radius, table.values.device)
        if offsets is not None:
            r = offsets[d].to(table.values.device).reshape(1, -1)
        terms = upsample_terms(period, radius, factor, sources, r)
        table = _regather(table, d, factor * period, new_radius, terms)
    return table


def _span(factor: int, sources: Sources) -> int:
    return max(abs(shift) for f in range(factor) for shift, _ in sources(f))


def upsample_terms(
    period: int,
    radius: int,
    factor: int,
    sources: Sources,
    r: torch.Tensor,
    t: torch.Tensor | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(coarse phase, coarse offset index, weight) per term, each of shape (τ·P, len(r)).

    The terms of :func:`upsample` in one dimension for the fine offsets ``r``
    (shape (1, n)), read from a table of period P and radius ``radius``.
    ``t``: the fine phases per offset (shape (m, n), values in [0, τP)) when not every
    phase is wanted (the swap-halved tables of :mod:`gpdip.limit.swap_fold`); the terms
    then have shape (m, n).
    """
    src = [sources(f) for f in range(factor)]
    if int(r.abs().max()) > factor * (radius - 2 * _span(factor, sources)):
        raise ValueError(
            f"fine offsets up to {int(r.abs().max())} need a coarse radius above {radius}"
        )
    if t is None:
        t, _ = _grid(factor * period, 0, r.device)
    s, f = torch.div(t, factor, rounding_mode="floor"), t % factor
    s2, f2 = torch.div(t + r, factor, rounding_mode="floor"), (t + r) % factor
    shift = torch.tensor([[sh for sh, _ in row] for row in src], device=r.device)
    weight = torch.tensor(
        [[w for _, w in row] for row in src], dtype=torch.float64, device=r.device
    )
    terms = []
    for k in range(len(src[0])):
        for k2 in range(len(src[0])):
            a = s + shift[f, k]
            b = s2 + shift[f2, k2]
            terms.append(((a % period) + 0 * r, b - a + radius, weight[f, k] * weight[f2, k2]))
    return terms


def sinc_upsample(table: CovTable, factor: int) -> CovTable:
    """Band-limited (sinc) upsampling of a stationary process: K_y(r) = K_x(r/τ).

    The discrete kernel is continued to fractional offsets by its band-limited
    interpolant, K_y(r) = c + Σ_m (K_x(m) − c)·sinc(r/τ − m) per dimension, with
    c = K_x at the table's far corner (the sum of sinc over all m is 1, so
    removing the constant floor first makes the truncated sum converge).
    Exact up to the part of K_x − c beyond the table, which the compiler keeps
    small with a margin of offsets (``SINC_MARGIN``).
    """
    table = to_box(table)
    values = table.values.reshape(table.values.shape[table.dims :])
    floor = values[(0,) * table.dims]
    values = values - floor
    radius = list(table.radius)
    for d in range(table.dims):
        m = torch.arange(-radius[d], radius[d] + 1, dtype=values.dtype, device=values.device)
        new_radius = factor * radius[d]
        r = torch.arange(-new_radius, new_radius + 1, dtype=values.dtype, device=values.device)
        weights = torch.sinc(r.reshape(-1, 1) / factor - m.reshape(1, -1))
        values = torch.tensordot(weights, values.movedim(d, 0), dims=([1], [0])).movedim(0, d)
        radius[d] = new_radius
    return stationary(values + floor).crop(tuple(radius))
