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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

Sources = Callable[[int], list[tuple[int, float]]]


@dataclass(frozen=True)
class CovTable:
    """Second moments C[p, r]; ``values`` shape ``(*period, *(2*radius+1))``."""

    values: torch.Tensor
    period: tuple[int, ...]
    radius: tuple[int, ...]

    @property
    def dims(self) -> int:
        return len(self.period)

    def offset_axis(self, d: int) -> int:
        return self.dims + d

    def crop(self, radius: tuple[int, ...]) -> CovTable:
        """The same table restricted to |r_d| ≤ radius[d]."""
        index = [slice(None)] * self.dims
        for have, want in zip(self.radius, radius, strict=True):
            if want > have:
                raise ValueError(f"cannot crop radius {have} to {want}")
            index.append(slice(have - want, have + want + 1))
        return CovTable(self.values[tuple(index)], self.period, tuple(radius))

    def tile(self, period: tuple[int, ...]) -> CovTable:
        """The same process described with a multiple of its period."""
        reps = [new // old for new, old in zip(period, self.period, strict=True)]
        values = self.values.repeat(*reps, *([1] * self.dims))
        return CovTable(values, tuple(period), self.radius)

    def diagonal(self) -> torch.Tensor:
        """E[z(t)²] per phase, shape ``period``."""
        index: tuple = (Ellipsis, *self.radius)
        return self.values[index]

    def phase_mean(self) -> torch.Tensor:
        """The stationary kernel K(r) = mean over phases p of C[p, r]; shape (2R+1,)*dims."""
        return self.values.mean(dim=tuple(range(self.dims)))


def stationary(kernel: torch.Tensor) -> CovTable:
    """Wrap a stationary table K(r) of shape (2R+1,)*dims."""
    radius = tuple((n - 1) // 2 for n in kernel.shape)
    return CovTable(kernel.reshape((1,) * kernel.dim() + kernel.shape), (1,) * kernel.dim(),
                    radius)


def align(tables: list[CovTable]) -> list[CovTable]:
    """Tile and crop tables to a common period (lcm) and radius (min), for sums."""
    dims = tables[0].dims
    period = tuple(math.lcm(*(t.period[d] for t in tables)) for d in range(dims))
    radius = tuple(min(t.radius[d] for t in tables) for d in range(dims))
    return [t.crop(radius).tile(period) for t in tables]


def _regather(table: CovTable, d: int, new_period: int, new_radius: int,
              terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> CovTable:
    """Re-index dimension d: out[p, r] = Σ_terms w[p, r] · C[phase[p, r], off[p, r]].

    ``terms`` holds (phase index, offset index, weight) arrays of shape
    (new_period, 2*new_radius+1); other dimensions are untouched.
    """
    vals = table.values.movedim((d, table.offset_axis(d)), (0, 1))
    out = None
    for phase, off, weight in terms:
        shape = weight.shape + (1,) * (vals.dim() - 2)
        part = vals[phase, off] * weight.reshape(shape).to(vals)
        out = part if out is None else out + part
    assert out is not None
    out = out.movedim((0, 1), (d, table.offset_axis(d)))
    period = list(table.period)
    radius = list(table.radius)
    period[d], radius[d] = new_period, new_radius
    return CovTable(out, tuple(period), tuple(radius))


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
    for d, period in enumerate(table.period):
        if period == 1:
            continue
        # Only j mod period matters: count how often each phase shift occurs.
        counts = [0] * period
        for j in range(-half, half + 1):
            counts[j % period] += 1
        total = torch.zeros_like(values)
        for shift, count in enumerate(counts):
            if count:
                total.add_(torch.roll(values, shifts=-shift, dims=d), alpha=count / kernel_size)
        values = total
    return CovTable(values, table.period, table.radius)


def decimate(table: CovTable, factor: int) -> CovTable:
    """Keep every ``factor``-th sample, y(s) = x(τs): C_y[q, r] = C_x[τq mod P, τr]."""
    for d in range(table.dims):
        period, radius = table.period[d], table.radius[d]
        new_period = period // math.gcd(period, factor)
        new_radius = radius // factor
        q, r = _grid(new_period, new_radius, table.values.device)
        phase = (factor * q) % period + 0 * r
        off = factor * r + radius + 0 * q
        table = _regather(table, d, new_period, new_radius,
                          [(phase, off, torch.ones(phase.shape, dtype=torch.float64))])
    return table


def box_average(table: CovTable, width: int) -> CovTable:
    """Average pooling before decimation: y(t) = mean_{i<τ} x(t + i).

    C_y[p, r] = mean_{i,i'} C_x[p + i, r + i' − i] (the box autocorrelation).
    """
    for d in range(table.dims):
        period, radius = table.period[d], table.radius[d]
        new_radius = radius - (width - 1)
        p, r = _grid(period, new_radius, table.values.device)
        terms = []
        for i in range(width):
            for i2 in range(width):
                phase = (p + i) % period + 0 * r
                off = r + i2 - i + radius + 0 * p
                terms.append((phase, off, torch.full(phase.shape, 1 / width**2,
                                                     dtype=torch.float64)))
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


def upsample(table: CovTable, factor: int, sources: Sources) -> CovTable:
    """Upsampling by a phase-dependent linear map: y(τs + f) = Σ_k a_{f,k} x(s + δ_k).

    C_y[t, t + r] = Σ_{k,k'} a_{f,k} a_{f',k'} C_x[(s + δ_k) mod P, s' + δ_k' − s − δ_k]
    with s = ⌊t/τ⌋, f = t mod τ and likewise s', f' for t + r.  The output period
    is τ·P: the phase is carried exactly, not approximated by a stationary kernel.
    """
    src = [sources(f) for f in range(factor)]
    n_src = len(src[0])
    span = max(abs(shift) for row in src for shift, _ in row)
    for d in range(table.dims):
        period, radius = table.period[d], table.radius[d]
        new_period, new_radius = factor * period, factor * (radius - 2 * span)
        t, r = _grid(new_period, new_radius, table.values.device)
        s, f = torch.div(t, factor, rounding_mode="floor"), t % factor
        s2, f2 = torch.div(t + r, factor, rounding_mode="floor"), (t + r) % factor
        shift = torch.tensor([[sh for sh, _ in row] for row in src])
        weight = torch.tensor([[w for _, w in row] for row in src], dtype=torch.float64)
        terms = []
        for k in range(n_src):
            for k2 in range(n_src):
                a = s + shift[f, k]
                b = s2 + shift[f2, k2]
                terms.append(((a % period) + 0 * r, b - a + radius,
                              weight[f, k] * weight[f2, k2]))
        table = _regather(table, d, new_period, new_radius, terms)
    return table


def sinc_upsample(table: CovTable, factor: int) -> CovTable:
    """Band-limited (sinc) upsampling of a stationary process: K_y(r) = K_x(r/τ).

    The discrete kernel is continued to fractional offsets by its band-limited
    interpolant, K_y(r) = c + Σ_m (K_x(m) − c)·sinc(r/τ − m) per dimension, with
    c = K_x at the table's far corner (the sum of sinc over all m is 1, so
    removing the constant floor first makes the truncated sum converge).
    Exact up to the part of K_x − c beyond the table, which the compiler keeps
    small with a margin of offsets (``SINC_MARGIN``).
    """
    values = table.values.reshape(table.values.shape[table.dims:])
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


def diagonal_pairs(table: CovTable) -> tuple[torch.Tensor, torch.Tensor]:
    """(E[z(t)²], E[z(t+r)²]) broadcast to the table's shape, for the non-linearities."""
    diag = table.diagonal()
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
