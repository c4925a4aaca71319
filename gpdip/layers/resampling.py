"""Resampling layers: downsampling (decimation or average pooling) and upsampling.

Both are linear maps of the signal, so they act on the NNGP and the NTK tables
alike (the NTK is a sum of products of the same linear functionals):

==================  ===========================================================
decimate τ          C'[q, r] = C[τq mod P, τr]; ``avg``: box autocorrelation first
nearest / bilinear  exact phase-dependent map; the period grows to τ·P
sinc                K'(r) = K(r/τ) by band-limited interpolation (stationary only)
==================  ===========================================================

Correlation radius (far field, :mod:`gpdip.limit.farfield`): decimation gives
⌊R/τ⌋ (pooling ⌊(R + τ − 1)/τ⌋); nearest/bilinear τ·(R + 2·span + 1) − 1 with
span 0 or 1; sinc has unbounded reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from gpdip.layers.base import PASS, Layer, one_of, positive_int
from gpdip.limit import covtable as ct
from gpdip.limit import phase_tables as pt
from gpdip.limit import resample_maps as rm
from gpdip.limit.farfield import upsampled_radius
from gpdip.limit.state import Group

if TYPE_CHECKING:
    from gpdip.finite.builder import Builder
    from gpdip.limit.state import Walker

DOWN_MODES = ("stride", "avg")
UP_MODES = ("nearest", "bilinear", "sinc")
# Coarse offsets kept beyond what a sinc upsampling needs: the band-limited
# interpolant sums K_x(m)·sinc(r/τ − m) over the table, and the part of K_x
# beyond it (after its constant floor is removed) is what is left out.
SINC_MARGIN = 32
_SPAN = {"nearest": 0, "bilinear": 1}


@dataclass(frozen=True)
class Downsample(Layer):
    """Decimation by ``factor`` (``mode='stride'``) or average pooling (``'avg'``)."""

    type_name = "downsample"

    factor: int = 2
    mode: str = "stride"

    def validate(self, where: str) -> None:
        positive_int(self.factor, where, "factor")
        one_of(self.mode, DOWN_MODES, where, "mode")

    def spatial_factor(self, where: str) -> Fraction:
        return Fraction(self.factor)

    def output_layer(self) -> object:
        return PASS

    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        return Downsampler(self.factor, self.mode, builder.dims), channels

    def needed_radius(self, radius: int) -> int:
        return self.factor * radius + (self.factor - 1 if self.mode == "avg" else 0)

    def far_radius(self, radius: float) -> float:
        extra = self.factor - 1 if self.mode == "avg" else 0
        return radius if math.isinf(radius) else math.floor((radius + extra) / self.factor)

    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        return [
            replace(g.map_tables(self._table), period=g.period // math.gcd(g.period, self.factor))
            for g in groups
        ]

    def _table(self, table: ct.CovTable) -> ct.CovTable:
        if self.mode == "avg":
            table = rm.box_average(table, self.factor)
        return rm.decimate(table, self.factor)


@dataclass(frozen=True)
class Upsample(Layer):
    """Upsampling by ``factor``: ``nearest``, ``bilinear`` (align_corners=False) or ``sinc``."""

    type_name = "upsample"

    factor: int = 2
    mode: str = "nearest"

    def validate(self, where: str) -> None:
        positive_int(self.factor, where, "factor")
        one_of(self.mode, UP_MODES, where, "mode")

    def spatial_factor(self, where: str) -> Fraction:
        return Fraction(1, self.factor)

    def output_layer(self) -> object:
        return PASS

    def module(self, builder: Builder, channels: int) -> tuple[nn.Module, int]:
        return Upsampler(self.factor, self.mode, builder.dims), channels

    def needed_radius(self, radius: int) -> int:
        extra = SINC_MARGIN if self.mode == "sinc" else 2 * _SPAN[self.mode]
        return math.ceil(radius / self.factor) + extra

    def far_radius(self, radius: float) -> float:
        if self.mode == "sinc" or math.isinf(radius):
            return math.inf
        return upsampled_radius(int(radius), self.factor, self.mode)

    def final_upsamples(self, where: str, keeps: bool) -> set[str]:
        return {where} if keeps and self.mode != "sinc" else set()

    def swap_halvable(self) -> bool | None:
        return self.mode != "sinc"

    def limit(
        self, groups: list[Group], walker: Walker, where: str, need: tuple[int, ...] | None
    ) -> list[Group]:
        return [self._map(g, walker, where, need) for g in groups]

    def _map(self, group: Group, walker: Walker, where: str, need: tuple[int, ...] | None) -> Group:
        if self.mode == "sinc":
            if group.period != 1:
                raise walker.fail(
                    where,
                    "sinc upsampling needs a stationary input, but an "
                    "earlier nearest/bilinear upsampling made it cyclostationary; "
                    "use sinc throughout or nearest/bilinear here",
                )
            return group.map_tables(lambda t: rm.sinc_upsample(t, self.factor))
        coarse_period = group.period
        group = replace(group, period=group.period * self.factor)
        final = where in walker.final and walker.plan is not None
        if need is not None:  # also on the walk without tables: fail before any work
            self._check_size(coarse_period, need, final, walker, where)
        if group.nngp is None:
            return group
        return group.map_tables(self._table_map(group.nngp, final, walker, need))

    def _table_map(
        self, table: ct.CovTable, final: bool, walker: Walker, need: tuple[int, ...] | None
    ):
        """The exact upsampling map; on an offset list when that is cheaper (phase_tables).

        The same linear map serves K and Θ: the fold is decided once, from K's table."""
        sources = (rm.nearest_sources if self.mode == "nearest" else rm.bilinear_sources)(
            self.factor
        )
        plan = walker.plan
        if final and plan is not None and pt.worth_listing(table, self.factor, plan.want):
            fold = pt.known_fold(table, plan.near, plan.folds)
            return lambda t: pt.upsample_final(t, self.factor, sources, plan, fold)
        if need is not None and plan is not None and pt.worth_listing(table, self.factor, need):
            fold = pt.known_fold(table, need, plan.folds)
            return lambda t: pt.upsample_folded(t, self.factor, sources, need, plan.folds, fold)
        return lambda t: rm.upsample(t, self.factor, sources)

    def _check_size(
        self, period: int, need: tuple[int, ...], final: bool, walker: Walker, where: str
    ) -> None:
        """Refuse an upsampled phase table above ``max_entries`` (before computing it)."""
        if final:
            assert walker.plan is not None
            entries = (self.factor * period) ** len(need) * pt.offset_count(walker.plan)
        else:
            span = _SPAN[self.mode]
            entries = math.prod(
                self.factor * period * (2 * self.factor * (self.needed_radius(n) - 2 * span) + 1)
                for n in need
            )
        if entries > walker.max_entries:
            raise walker.fail(
                where,
                f"compiling {walker.name!r} at this size needs a phase "
                f"table of {entries:,} entries (period {self.factor * period} "
                f"per dimension), above the limit of {walker.max_entries:,}; "
                f"{self.mode} upsampling makes the kernel cyclostationary and the "
                "compiler keeps every phase exactly. Use a smaller size, sinc "
                "upsampling, or raise max_entries / $GPDIP_MAX_TABLE",
            )


class Downsampler(nn.Module):
    """Decimation y(s) = x(τs) or average pooling y(s) = mean_{i<τ} x(τs + i)."""

    def __init__(self, factor: int, mode: str, dims: int) -> None:
        super().__init__()
        self.factor, self.mode, self.dims = factor, mode, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "avg":
            pool = F.avg_pool1d if self.dims == 1 else F.avg_pool2d
            return pool(x, self.factor)
        index: tuple = (Ellipsis, *([slice(None, None, self.factor)] * self.dims))
        return x[index]


class Upsampler(nn.Module):
    """Nearest, (bi)linear (align_corners=False) or sinc (FFT zero-padding) upsampling."""

    def __init__(self, factor: int, mode: str, dims: int) -> None:
        super().__init__()
        self.factor, self.mode, self.dims = factor, mode, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            return F.interpolate(x, scale_factor=self.factor, mode="nearest")
        if self.mode == "bilinear":
            mode = "linear" if self.dims == 1 else "bilinear"
            return F.interpolate(x, scale_factor=self.factor, mode=mode, align_corners=False)
        return sinc_upsample(x, self.factor, self.dims)


def sinc_upsample(x: torch.Tensor, factor: int, dims: int) -> torch.Tensor:
    """Band-limited upsampling on the torus: zero-pad the spectrum (Nyquist bin split)."""
    for axis in range(x.dim() - dims, x.dim()):
        n = x.shape[axis]
        spec = torch.fft.fft(x, dim=axis)
        m = n * factor
        shape = list(spec.shape)
        shape[axis] = m
        out = spec.new_zeros(shape)
        half = n // 2
        idx_lo = torch.arange(0, (n + 1) // 2)
        idx_hi = torch.arange(n - half, n) if half else torch.arange(0)
        out.index_copy_(axis, idx_lo, spec.index_select(axis, idx_lo))
        out.index_copy_(axis, idx_hi + (m - n), spec.index_select(axis, idx_hi))
        if n % 2 == 0:  # split the Nyquist bin between +n/2 and −n/2
            nyq = spec.index_select(axis, torch.tensor([half])) / 2
            out.index_copy_(axis, torch.tensor([half]), nyq)
            out.index_copy_(axis, torch.tensor([m - half]), nyq)
        x = torch.fft.ifft(out, dim=axis).real * factor
    return x
