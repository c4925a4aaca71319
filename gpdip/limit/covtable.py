"""Cyclostationary second-moment tables and the linear maps of the limit recursion.

A :class:`CovTable` holds C[p, r] = E[z(t) z(t + r)] for positions t with
t ≡ p (mod period), per spatial dimension; ``values`` has shape
``(*period, *(2*radius + 1))`` and offset r sits at index ``radius + r``.
A stationary process has period 1 in every dimension.  Nearest and bilinear
upsampling make a process cyclostationary (period = factor); the compiler
carries the phase through every later layer and averages over phase only at
the output (:meth:`CovTable.phase_mean`), which is what a spatial average over
the output image of the finite network estimates.

Every map here is separable over dimensions: it re-indexes one dimension's
(phase, offset) pair of axes at a time with :func:`_regather`.

A table may instead hold a *list* of offsets (``points``, an :class:`OffsetSet`):
``values`` then has shape ``(*period, n)``.  The maps that keep each offset
(conv taps, non-linearities, sums) work on it unchanged; it is how the last
upsampling's table is computed on the offsets the output needs only
(:mod:`gpdip.limit.phase_tables`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from gpdip.limit import index_cache as ic
from gpdip.limit import swap_fold as sf

Sources = Callable[[int], list[tuple[int, float]]]

# Relative tolerance of the numerical symmetry tests (phase_tables): symmetric tables are
# computed by mirrored sums of the same terms, so they agree to a few ulps.
SYMMETRY_TOL = 1e-13


class FoldMismatchError(Exception):
    """Internal: tables on offset lists that assumed a symmetry met a table without it.

    The compiler catches it and recompiles with the pair-swap fold only, which
    every second-moment table has.
    """


@dataclass(frozen=True, eq=False)
class OffsetSet:
    """Offsets (n, dims) a table is kept on, and the output symmetry that chose them.

    ``fold``: ``"half"`` (C[p, r] = C[(p + r) mod P, −r], true of every table:
    r₀ ≥ 0 listed), ``"quadrant"`` (also C[p, r] = C[(c_d − p_d) mod P, −r_d] per
    dimension d, a reflection about the centre c_d: r ≥ 0 listed) or
    ``"octant"`` (also symmetric under transposition: r₀ ≥ r₁ ≥ 0 listed).
    ``zero``: the index of offset 0 (the variances, needed by non-linearities).
    ``box``: the radius of the box the list stands for (:func:`to_box`);
    ``None`` for the output's list (near box plus far corner, see phase_tables).
    ``rows``, ``weights``: for a swap-halved table (:mod:`gpdip.limit.swap_fold`, values of
    shape (H, P₁, n)), the dimension-0 phase of each stored row per offset and its weight in
    the phase mean, both (H, n); ``diag_index`` (P₀·P₁,) reads the variances from it.
    """

    offsets: torch.Tensor
    fold: str
    zero: int
    centre: tuple[int, ...] = ()
    box: tuple[int, ...] | None = None
    rows: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    diag_index: torch.Tensor | None = None

    def same(self, other: OffsetSet) -> bool:
        return self is other or (
            self.fold == other.fold
            and self.centre == other.centre
            and self.box == other.box
            and self.offsets.shape == other.offsets.shape
            and bool((self.offsets == other.offsets).all())
            and _same_rows(self.rows, other.rows)
        )

    @property
    def halved(self) -> bool:
        """Whether the table keeps only the swap fold's rows (swap_fold)."""
        return self.rows is not None


def _same_rows(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool((a == b).all())


def halved(table: CovTable) -> bool:
    """Whether a table is swap-halved (values (H, P₁, n), see :mod:`gpdip.limit.swap_fold`)."""
    return table.points is not None and table.points.halved


@dataclass(frozen=True)
class CovTable:
    """Second moments C[p, r]; ``values`` shape ``(*period, *(2*radius+1))``.

    With ``points``, ``values`` has shape ``(*period, n)`` over ``points.offsets``
    and ``radius`` is the largest |r_d| listed.
    """

    values: torch.Tensor
    period: tuple[int, ...]
    radius: tuple[int, ...]
    points: OffsetSet | None = None

    @property
    def dims(self) -> int:
        return len(self.period)

    def offset_axis(self, d: int) -> int:
        return self.dims + d

    def crop(self, radius: tuple[int, ...]) -> CovTable:
        """The same table restricted to |r_d| ≤ radius[d]."""
        if self.points is not None:
            return self._crop_points(radius)
        index = [slice(None)] * self.dims
        for have, want in zip(self.radius, radius, strict=True):
            if want > have:
                raise ValueError(f"cannot crop radius {have} to {want}")
            index.append(slice(have - want, have + want + 1))
        return CovTable(self.values[tuple(index)], self.period, tuple(radius))

    def tile(self, period: tuple[int, ...]) -> CovTable:
        """The same process described with a multiple of its period."""
        if all(p == 1 for p in self.period):  # a broadcast view: the maps only read it
            values = self.values.expand(*period, *self.values.shape[self.dims :])
            return replace(self, values=values, period=tuple(period))
        reps = [new // old for new, old in zip(period, self.period, strict=True)]
        values = self.values.repeat(*reps, *([1] * (self.values.dim() - self.dims)))
        return replace(self, values=values, period=tuple(period))

    def diagonal(self) -> torch.Tensor:
        """E[z(t)²] per phase, shape ``period``."""
        if self.points is not None and self.points.diag_index is not None:
            return self.values.reshape(-1)[self.points.diag_index].reshape(self.period)
        if self.points is not None:
            return self.values[..., self.points.zero]
        index: tuple = (Ellipsis, *self.radius)
        return self.values[index]

    def _crop_points(self, radius: tuple[int, ...]) -> CovTable:
        assert self.points is not None
        offsets = self.points.offsets
        keep = (offsets.abs() <= torch.tensor(radius)).all(dim=1)
        if bool(keep.all()):
            return self
        if not bool(keep[self.points.zero]):
            raise ValueError("cannot crop a table on offsets below offset 0")
        if self.points.halved:
            raise ValueError("cannot crop a swap-halved table")
        kept = offsets[keep]
        zero = int(keep[: self.points.zero].sum())
        points = OffsetSet(kept, self.points.fold, zero)
        return CovTable(
            self.values[..., keep],
            self.period,
            tuple(int(v) for v in kept.abs().amax(dim=0)),
            points,
        )

    def phase_mean(self) -> torch.Tensor:
        """The stationary kernel K(r) = mean over phases p of C[p, r]; shape (2R+1,)*dims.

        A swap-halved table (values (H, P₁, n)): Σ of weight·C over its entries, / P₀·P₁.
        """
        if self.points is not None and self.points.weights is not None:
            weighted = self.values * self.points.weights.to(self.values).unsqueeze(1)
            return weighted.sum(dim=(0, 1)) / math.prod(self.period)
        return self.values.mean(dim=tuple(range(self.dims)))


def stationary(kernel: torch.Tensor) -> CovTable:
    """Wrap a stationary table K(r) of shape (2R+1,)*dims."""
    radius = tuple((n - 1) // 2 for n in kernel.shape)
    return CovTable(kernel.reshape((1,) * kernel.dim() + kernel.shape), (1,) * kernel.dim(), radius)


def align(tables: list[CovTable], tile: bool = True) -> list[CovTable]:
    """Tile and crop tables to a common period (lcm) and radius (min), for sums.

    When one table is on an offset list, the others are read at its offsets
    (:func:`at_points`).  ``tile=False`` leaves each table's period as it is
    (:func:`affine_mix` tiles by broadcasting, without the copy).
    """
    dims = tables[0].dims
    period = tuple(math.lcm(*(t.period[d] for t in tables)) for d in range(dims))
    listed = [t.points for t in tables if t.points is not None]
    if listed:
        if any(not p.same(listed[0]) for p in listed):
            raise FoldMismatchError("tables on different offset lists")
        if listed[0].halved and len(tables) > 1:  # rows differ from a tiled table's
            raise FoldMismatchError("a swap-halved table meets another table")
        return [_tiled(at_points(t, listed[0]), period, tile) for t in tables]
    radius = tuple(min(t.radius[d] for t in tables) for d in range(dims))
    return [_tiled(t.crop(radius), period, tile) for t in tables]


def _tiled(table: CovTable, period: tuple[int, ...], tile: bool) -> CovTable:
    return table.tile(period) if tile else table


def affine_mix(
    tables: list[CovTable],
    fractions: list[float],
    scale: float | torch.Tensor,
    shift: float | torch.Tensor,
) -> CovTable:
    """scale·Σ_i fraction_i·C_i + shift on aligned tables (a conv's map after its taps).

    The tables may have different periods (``align(..., tile=False)``): each is tiled
    to their lcm.  Without autograd it runs in place on one new tensor (these tables
    are large), reading each table through a broadcast view instead of a tiled copy.
    """
    dims = tables[0].dims
    period = tuple(math.lcm(*(t.period[d] for t in tables)) for d in range(dims))
    grad = any(torch.is_tensor(x) and x.requires_grad for x in (scale, shift))
    if any(halved(t) for t in tables):
        if len(tables) > 1:
            raise FoldMismatchError("a swap-halved table meets another table")
        values = tables[0].values
        if grad or values.requires_grad:
            return replace(tables[0], values=values * (fractions[0] * scale) + shift)
        mixed = torch.mul(values, float(scale) * fractions[0])  # the operations below, in order
        return replace(tables[0], values=mixed.add_(float(shift)))
    if grad or any(t.values.requires_grad for t in tables):
        tables = [t.tile(period) for t in tables]
        mixed = tables[0].values * fractions[0]
        for table, fraction in zip(tables[1:], fractions[1:], strict=True):
            mixed = mixed + table.values * fraction
        return replace(tables[0], values=mixed * scale + shift)
    scale = float(scale)
    first = tables[0].values
    values = torch.empty(period + first.shape[dims:], dtype=first.dtype, device=first.device)
    torch.mul(_period_view(tables[0], period), scale * fractions[0], out=_split(values, tables[0]))
    for table, fraction in zip(tables[1:], fractions[1:], strict=True):
        _split(values, table).add_(_period_view(table, period), alpha=scale * fraction)
    return replace(tables[0], values=values.add_(float(shift)), period=period)


def _split(values: torch.Tensor, table: CovTable) -> torch.Tensor:
    """A table of a multiple of ``table``'s period viewed as (n₀, P₀, n₁, P₁, …, offsets)."""
    shape: list[int] = []
    for d, p in enumerate(table.period):
        shape += [values.shape[d] // p, p]
    return values.view(*shape, *values.shape[table.dims :])


def _period_view(table: CovTable, period: tuple[int, ...]) -> torch.Tensor:
    """``table.values`` as (1, P₀, 1, P₁, …, offsets): broadcast, it is the tiled table."""
    shape: list[int] = []
    for p in table.period:
        shape += [1, p]
    values = table.values
    return values.reshape(*shape, *values.shape[table.dims :]).expand(
        *[n for d, p in enumerate(table.period) for n in (period[d] // p, p)],
        *values.shape[table.dims :],
    )


def at_points(table: CovTable, points: OffsetSet) -> CovTable:
    """A box table read at the listed offsets (values shape ``(*period, n)``).

    A fold beyond ``"half"`` assumed the output is even per dimension (and
    symmetric under transposition for ``"octant"``); a stationary table joining
    it must have that symmetry too, or :class:`FoldMismatchError` is raised.
    """
    if table.points is not None:
        if not table.points.same(points):
            raise FoldMismatchError("tables on different offset lists")
        return table
    if points.fold != "half" and not _symmetric_stationary(table, points.fold):
        raise FoldMismatchError("a joining table lacks the symmetry of the offset list")
    index = tuple(
        (points.offsets[:, d] + table.radius[d]).to(table.values.device) for d in range(table.dims)
    )
    key: tuple = (Ellipsis, *index)
    values = table.values[key]
    radius = tuple(int(v) for v in points.offsets.abs().amax(dim=0))
    return CovTable(values, table.period, radius, points)


def _symmetric_stationary(table: CovTable, fold: str) -> bool:
    """Whether a box table is stationary and even per dimension (and transposable)."""
    if any(p != 1 for p in table.period):
        return False
    kernel = table.values.detach().reshape(table.values.shape[table.dims :])
    tol = SYMMETRY_TOL * float(kernel.abs().max())
    ok = all(float((kernel - kernel.flip(d)).abs().max()) <= tol for d in range(table.dims))
    if ok and fold == "octant":
        ok = kernel.shape[0] == kernel.shape[1] and float((kernel - kernel.T).abs().max()) <= tol
    return ok


def _grid(period: int, radius: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.arange(period, device=device).reshape(-1, 1)
    r = torch.arange(-radius, radius + 1, device=device).reshape(1, -1)
    return p, r


def conv_taps(table: CovTable, kernel_size: int) -> CovTable:
    """Average over a conv's taps: C'[p, r] = mean_j C[p + j, r] (iid taps, same offset r).

    Cov(Σ_j w_j x(t−j), Σ_j w_j x(t+r−j)) = Σ_j E[w_j²]·C(t−j, t+r−j): only equal
    taps correlate, so a stationary input keeps its kernel and a cyclostationary
    one is averaged over the phases its taps visit.
    """
    values = table.values
    half = kernel_size // 2
    if half and halved(table) and any(p > 1 for p in table.period):
        raise FoldMismatchError("a conv wider than 1 mixes the phases of a swap-halved table")
    for d, period in enumerate(table.period):
        if period == 1 or half == 0:
            continue
        # Only j mod period matters: count how often each phase shift occurs.
        counts = [0] * period
        for j in range(-half, half + 1):
            counts[j % period] += 1
        total = values * (counts[0] / kernel_size)
        for shift, count in enumerate(counts):
            if count and shift:  # total[p] += C[(p + shift) mod P], as two slices (no roll copy)
                alpha = count / kernel_size
                total.narrow(d, 0, period - shift).add_(
                    values.narrow(d, shift, period - shift), alpha=alpha
                )
                total.narrow(d, period - shift, shift).add_(values.narrow(d, 0, shift), alpha=alpha)
        values = total
    return replace(table, values=values)


def to_box(table: CovTable) -> CovTable:
    """A table on a folded offset list back on its full box (the maps that move offsets).

    Each (p, r) of the box is read from its listed representative: pair swap
    (p, r) → ((p + r) mod P, −r) when r₀ < 0 (``"half"``); reflection
    (p_d, r_d) → ((c_d − p_d) mod P, −r_d) per dimension with r_d < 0, then
    transposition when r₀ < r₁ (``"quadrant"``, ``"octant"``).
    """
    if table.points is None:
        return table
    return CovTable(box_values(table), table.period, box_radius(table))


def box_radius(table: CovTable) -> tuple[int, ...]:
    """The radius of the box a table stands for (its own, or its offset list's)."""
    if table.points is None:
        return table.radius
    if table.points.box is None:
        raise ValueError("the output's offset list has no box to unfold to")
    return table.points.box


def box_values(table: CovTable, last: tuple[int, int] | None = None) -> torch.Tensor:
    """The values of :func:`to_box`, optionally only at offset indices ``last`` = (low, high)
    (inclusive, 0 ≤ low ≤ high ≤ 2R) of the last dimension: shape (*period, …, high − low + 1).
    """
    points = table.points
    if points is None:
        return (
            table.values
            if last is None
            else table.values.narrow(-1, last[0], last[1] - last[0] + 1)
        )
    box_radius(table)  # raises for the output's list, which has no box
    # The index depends on the layout only: the NNGP and NTK tables share one, and so do
    # later compiles of the same network and size (hyperparameter fits compile many times).
    key = ("box", *ic.layout_key(points), table.period, str(table.values.device), last)
    index = ic.CACHE.get_or_build(
        key, lambda: box_index(points, table.period, table.values.device, last)
    )
    return table.values.reshape(-1).take(index)


def box_index(
    points: OffsetSet,
    periods: tuple[int, ...],
    device: torch.device,
    last: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Flat index into a listed table's values for every (p, r) of its box (see to_box)."""
    assert points.box is not None
    dims, box = len(periods), points.box
    # Per dimension, a small (P_d, 2R_d+1) table of source phases; broadcast at the end.
    phase: list[tuple[torch.Tensor, ...]] = []
    off: list[torch.Tensor] = []
    for d, period in enumerate(periods):
        p, r = _grid(period, box[d], device)
        if last is not None and d == dims - 1:
            r = r[:, last[0] : last[1] + 1]
        if points.fold == "half":
            phase.append((p, (p + r) % period))  # kept, swapped
            off.append(r)
        else:
            phase.append((torch.where(r < 0, (points.centre[d] - p) % period, p),))
            off.append(r.abs())
    offs = torch.stack(torch.meshgrid(*[o.reshape(-1) for o in off], indexing="ij"), dim=-1)
    if points.fold == "half":
        swap = offs[..., 0] < 0
        offs = torch.where(swap.unsqueeze(-1), -offs, offs)
        flat_phase = torch.where(
            _spread(swap, dims, range(dims, 2 * dims)),
            _phase_index([ph[1] for ph in phase], periods),
            _phase_index([ph[0] for ph in phase], periods),
        )
    elif points.fold == "octant":
        swap = offs[..., 0] < offs[..., 1]
        offs = torch.where(swap.unsqueeze(-1), offs.flip(-1), offs)
        flat_phase = torch.where(
            _spread(swap, dims, range(dims, 2 * dims)),
            _phase_index([ph[0] for ph in phase], periods, reverse=True),
            _phase_index([ph[0] for ph in phase], periods),
        )
    else:
        flat_phase = _phase_index([ph[0] for ph in phase], periods)
    # Position of each offset in the list, through a dense lookup box.
    lookup = torch.full([2 * r + 1 for r in box], -1, dtype=torch.long, device=device)
    shift = torch.tensor(box, device=device)
    listed = points.offsets.to(device)
    lookup[tuple((listed + shift).T)] = torch.arange(len(listed), device=device)
    column = lookup[tuple((offs + shift).movedim(-1, 0))]
    assert bool((column >= 0).all()), "an offset of the box has no listed representative"
    return flat_phase * len(listed) + _spread(column, dims, range(dims, 2 * dims))


def _spread(small: torch.Tensor, dims: int, axes: range) -> torch.Tensor:
    """View a tensor over some of the 2·dims table axes with size-1 axes elsewhere."""
    shape = [1] * (2 * dims)
    for axis, n in zip(axes, small.shape, strict=True):
        shape[axis] = n
    return small.reshape(shape)


def _phase_index(
    phase: list[torch.Tensor], period: tuple[int, ...], reverse: bool = False
) -> torch.Tensor:
    """Flat phase index Σ_d phase_d·stride_d, broadcast over the table's axes.

    ``phase[d]`` has shape (P_d, 2R_d+1) over (phase d, offset d); with
    ``reverse`` (transposition), the source phase from dimension 0 is dimension
    1's phase in the listed table and vice versa.
    """
    dims = len(phase)
    flat = None
    for d in range(dims):
        target = dims - 1 - d if reverse else d
        stride = math.prod(period[target + 1 :])
        part = _spread(phase[d], dims, range(d, 2 * dims, dims)) * stride
        flat = part if flat is None else flat + part
    assert flat is not None
    return flat


def diagonal_pairs(table: CovTable) -> tuple[torch.Tensor, torch.Tensor]:
    """(E[z(t)²], E[z(t+r)²]) broadcast to the table's shape, for the non-linearities."""
    diag = table.diagonal()
    if halved(table):
        assert table.points is not None and table.points.rows is not None
        first, second = sf.pair_indices(table.points.rows, table.points.offsets, table.period)
        flat = diag.reshape(-1)
        return flat[first.expand_as(table.values)], flat[second]
    if table.points is not None:
        offsets = table.points.offsets.to(diag.device)
        index = []
        for d, period in enumerate(table.period):
            shape = [1] * (table.dims + 1)
            shape[d] = period
            phase = torch.arange(period, device=diag.device).reshape(shape)
            index.append((phase + offsets[:, d]) % period)
        k22 = diag[tuple(index)]
        return diag.unsqueeze(-1).expand_as(table.values), k22.expand_as(table.values)
    index = []
    for d in range(table.dims):
        p, r = _grid(table.period[d], table.radius[d], table.values.device)
        idx = (p + r) % table.period[d]
        shape = [1] * (2 * table.dims)
        shape[d], shape[table.offset_axis(d)] = idx.shape
        index.append(idx.reshape(shape))
    k22 = diag[tuple(index)]
    k11 = diag.reshape(diag.shape + (1,) * table.dims)
    return k11.expand_as(table.values), k22.expand_as(table.values)
